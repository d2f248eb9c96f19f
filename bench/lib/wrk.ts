import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/**
 * wrk (Debian package `wrk`), a C load generator, as a bench's client where the client's own cost
 * would hide the server's: Node's http client spends 80-100 µs of CPU a request here (measured with
 * process.cpuUsage around a burst at concurrency 32), as much as a serve replica spends answering
 * one, and both share the machine's 2 cores. wrk spends a few µs. Driven through its CLI and a Lua
 * script (its documented way to send a body and headers) rather than a Node binding: none is kept.
 */
export interface WrkFigures {
  perSecond: number;
  /** Latency percentiles in ms (wrk's --latency distribution). */
  p50: number;
  p99: number;
  /** Non-2xx answers plus socket errors (connect, read, write, timeout). */
  errors: number;
}

export interface WrkLoad {
  url: string;
  headers: Record<string, string>;
  body: string | Buffer;
  contentType: string;
  connections: number;
  seconds: number;
}

/** Whether `wrk` is on the PATH (it prints its usage and exits 1 for --version). */
export function wrkInstalled(): boolean {
  return !spawnSync('wrk', ['--version']).error;
}

/** POSTs `body` over `connections` keep-alive connections (one request in flight on each) for `seconds`. */
export async function wrkPost(load: WrkLoad): Promise<WrkFigures> {
  const dir = await mkdtemp(join(tmpdir(), 'tq-wrk-'));
  try {
    const bodyFile = join(dir, 'body');
    await writeFile(bodyFile, load.body);
    const script = join(dir, 'post.lua');
    await writeFile(script, luaScript(bodyFile, { ...load.headers, 'content-type': load.contentType }));
    const args = ['-t1', `-c${load.connections}`, `-d${load.seconds}s`, '--latency', '-s', script, load.url];
    const { stdout } = await promisify(execFile)('wrk', args);
    return parseWrk(stdout);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Lua string literals of header names and values: printable ASCII only, quotes and backslashes escaped. */
function luaString(s: string): string {
  if (!/^[\x20-\x7e]*$/.test(s)) throw new Error(`a wrk header must be printable ASCII: ${JSON.stringify(s)}`);
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

function luaScript(bodyFile: string, headers: Record<string, string>): string {
  return [
    `local f = assert(io.open(${luaString(bodyFile)}, "rb"))`,
    'wrk.body = f:read("*a")',
    'f:close()',
    'wrk.method = "POST"',
    ...Object.entries(headers).map(([name, value]) => `wrk.headers[${luaString(name)}] = ${luaString(value)}`),
    '',
  ].join('\n');
}

const MS_PER_UNIT: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

/** wrk's report: Requests/sec, the 50% and 99% latencies, non-2xx answers and socket errors. */
export function parseWrk(out: string): WrkFigures {
  const number = (re: RegExp) => {
    const m = re.exec(out);
    if (!m) throw new Error(`wrk's report lacks ${re.source}:\n${out}`);
    return m;
  };
  const latency = (p: string) => {
    const m = number(new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm'));
    return Number(m[1]) * MS_PER_UNIT[m[2]!]!;
  };
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  return {
    perSecond: Number(number(/Requests\/sec:\s+([\d.]+)/)[1]),
    p50: latency('50'),
    p99: latency('99'),
    errors: Number(non2xx?.[1] ?? 0) + (socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0),
  };
}
