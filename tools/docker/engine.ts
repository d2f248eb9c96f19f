import { spawn, spawnSync } from 'node:child_process';
import { openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Whether a Docker engine answers on the default socket (the CLI's `docker info` exits 0). */
export function engineAnswers(): boolean {
  return spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], { stdio: 'ignore' }).status === 0;
}

/**
 * Makes sure a Docker engine answers. When none does and we are root with dockerd on PATH, starts
 * one, detached, and leaves it running: the engine is machine state like the shared Redis, and it
 * keeps the images the test builds (tools/docker/images.ts skips rebuilding them) between runs.
 * Resolves once `docker info` answers; fails naming the log when dockerd exits or never answers.
 */
export async function ensureDockerEngine(timeoutMs = 60_000): Promise<{ started: boolean }> {
  if (engineAnswers()) return { started: false };
  if (process.getuid?.() !== 0 || spawnSync('dockerd', ['--version']).status !== 0)
    throw new Error(
      'No Docker engine answers and this process cannot start one (needs root and dockerd: apt-get install docker.io).',
    );
  const log = join(tmpdir(), 'tq-dockerd.log');
  const out = openSync(log, 'a');
  const child = spawn('dockerd', [], { detached: true, stdio: ['ignore', out, out] });
  let exited: string | undefined;
  child.once('exit', (code, signal) => (exited = `dockerd exited (${code ?? signal}); see ${log}`));
  child.unref();
  const deadline = Date.now() + timeoutMs;
  // Polls the engine itself (the socket appearing is not enough: dockerd answers once initialised).
  while (!engineAnswers()) {
    if (exited) throw new Error(exited);
    if (Date.now() > deadline) throw new Error(`dockerd did not answer within ${timeoutMs} ms; see ${log}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  console.log(`started dockerd (pid ${child.pid}, log ${log}); it keeps running for later runs`);
  return { started: true };
}
