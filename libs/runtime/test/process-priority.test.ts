import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { getPriority } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runAtNice } from '@tq/runtime';

/** Nice value of each thread of `pid` (on Linux, getpriority takes a thread id too). */
async function threadNices(pid: number): Promise<Map<number, number>> {
  const tids = (await readdir(`/proc/${pid}/task`)).map(Number);
  return new Map(tids.map((tid) => [tid, getPriority(tid)]));
}

/**
 * A child process (nice values do not go back up without CAP_SYS_NICE) sets itself to 7 once it
 * has V8's threads and libuv's pool (a file stat starts it), then starts a worker thread; it
 * prints its pid and what runAtNice said, and lives until killed (a minute at most).
 */
const CHILD = `
const { runAtNice } = require(${JSON.stringify(join(__dirname, '..', 'src', 'process-priority'))});
require('node:fs').stat(process.execPath, () => {
  const outcome = runAtNice(7);
  const { Worker } = require('node:worker_threads');
  new Worker('setInterval(() => {}, 1000)', { eval: true }).on('online', () => {
    console.log(JSON.stringify({ pid: process.pid, outcome }));
  });
});
setTimeout(() => process.exit(0), 60000);
`;

describe('runAtNice', { skip: process.platform !== 'linux' && 'nice values per thread are Linux' }, () => {
  it('sets every thread of the process, those started before and after', async () => {
    const child = execFile(process.execPath, ['-e', CHILD]);
    try {
      const line = await new Promise<string>((resolve, reject) => {
        child.stdout!.once('data', (chunk: Buffer) => resolve(chunk.toString()));
        child.once('exit', (code) => reject(new Error(`the child exited (${code}) before printing`)));
      });
      const { pid, outcome } = JSON.parse(line) as { pid: number; outcome: { threads: number; refused?: string } };
      assert.equal(outcome.refused, undefined);
      const nices = await threadNices(pid);
      // V8's platform threads and libuv's pool were there before the call: more than the main one.
      assert.ok(outcome.threads > 4, `${outcome.threads} threads set`);
      assert.ok(nices.size > outcome.threads, 'the worker thread started after the call is listed too');
      assert.deepEqual(
        [...nices].filter(([, nice]) => nice !== 7),
        [],
        'threads not at nice 7 (tid, nice)',
      );
    } finally {
      child.kill();
    }
  });

  it('does nothing at 0', () => {
    assert.deepEqual(runAtNice(0), { threads: 0 });
  });
});
