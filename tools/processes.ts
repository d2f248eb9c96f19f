import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export const API_MAIN = join(__dirname, '..', 'apps', 'api', 'src', 'main.js');
export const WORKER_MAIN = join(__dirname, '..', 'apps', 'worker', 'src', 'main.js');
export const SERVE_MAIN = join(__dirname, '..', 'apps', 'serve', 'src', 'main.js');

/**
 * Starts a compiled app as a child process, its output prefixed with a label (or kept quiet).
 * A variable set to undefined in `env` is removed from the child's environment; `cwd` is where
 * relative defaults (ARTIFACT_DIR=.data) resolve.
 */
export function startApp(
  main: string,
  label: string,
  env: NodeJS.ProcessEnv,
  quiet = false,
  cwd?: string,
): ChildProcess {
  const merged = Object.fromEntries(Object.entries({ ...process.env, ...env }).filter(([, v]) => v !== undefined));
  const child = spawn(process.execPath, [main], { env: merged, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const relay = (stream: NodeJS.ReadableStream | null, out: NodeJS.WriteStream) => {
    let buffered = '';
    stream?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      if (!quiet) for (const line of lines) out.write(`[${label}] ${line}\n`);
    });
  };
  relay(child.stdout, process.stdout);
  relay(child.stderr, process.stderr);
  return child;
}

/** Polls GET url until it answers 2xx, or fails after timeoutMs naming the url. */
export async function waitForHttp(url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await fetch(url).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms`);
}

export function stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    const force = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(force);
      done();
    });
    child.kill(signal);
  });
}
