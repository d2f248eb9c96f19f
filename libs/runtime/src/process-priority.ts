import { readdirSync } from 'node:fs';
import { setPriority } from 'node:os';

/** Where Linux lists a process's threads; nice values are per thread there. */
const TASKS_DIR = '/proc/self/task';

export interface NiceOutcome {
  /** Threads set to the value. */
  threads: number;
  /** Why a thread (or the process) kept its priority, if one did: the first reason. */
  refused?: string;
}

/**
 * Runs this whole process at `nice` (SERVE_NICE, WORKER_NICE): the API it shares a host's cores
 * with goes first. On Linux a nice value belongs to a thread, and `os.setPriority(n)` sets only the
 * calling one: a replica set that way kept V8's platform threads (GC) and libuv's pool, both
 * started before its first line ran, at 0 (`ps -L -o tid,ni`). So every thread in
 * /proc/self/task is set; threads started later inherit their creator's value. Elsewhere the
 * process is set as the OS allows. A value below the current one needs CAP_SYS_NICE: then
 * `refused` says why, and the priority stays.
 */
export function runAtNice(nice: number): NiceOutcome {
  if (nice === 0) return { threads: 0 };
  const refusals: string[] = [];
  const set = (id: number): boolean => {
    try {
      setPriority(id, nice);
      return true;
    } catch (err) {
      // A thread that ended since the listing has nothing left to set.
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH')
        refusals.push(err instanceof Error ? err.message : String(err));
      return false;
    }
  };
  const threads = threadIds();
  // The calling thread first (0: this thread), so threads it starts from now on inherit the value.
  const count = [0, ...threads.filter((tid) => tid !== process.pid)].filter(set).length;
  return refusals[0] === undefined ? { threads: count } : { threads: count, refused: refusals[0] };
}

/** This process's thread ids, or none where /proc is not there (not Linux). */
function threadIds(): number[] {
  try {
    return readdirSync(TASKS_DIR).map(Number).filter(Number.isInteger);
  } catch {
    return [];
  }
}
