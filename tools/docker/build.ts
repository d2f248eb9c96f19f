import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { createHash } from 'node:crypto';

/** The label that holds a hash of the recipe an image was built from. */
export const RECIPE_LABEL = 'org.tensorqueue.test-recipe';

/** The legacy builder: BuildKit needs the buildx plugin, which Debian's docker.io CLI lacks. */
export const DOCKER_ENV = { ...process.env, DOCKER_BUILDKIT: '0' };

export function recipeHash(recipe: unknown): string {
  return createHash('sha256').update(JSON.stringify(recipe)).digest('hex').slice(0, 16);
}

/** Whether `tag` exists with the recipe label `hash`: the engine keeps images, so a warm run builds nothing. */
export function upToDate(tag: string, hash: string): boolean {
  const r = spawnSync('docker', ['image', 'inspect', '--format', `{{index .Config.Labels "${RECIPE_LABEL}"}}`, tag], {
    encoding: 'utf8',
  });
  return r.status === 0 && r.stdout.trim() === hash;
}

/** Runs a command to completion, its output on ours; fails naming it. */
export function run(cmd: string, args: string[], opts: SpawnSyncOptions = {}): void {
  const r = spawnSync(cmd, args, { stdio: 'inherit', env: DOCKER_ENV, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal ?? r.error?.message})`);
}

/** `docker build` with host networking (no container traffic leaves the host's own stack) and the recipe label. */
export function dockerBuild(tag: string, hash: string, context: string, extra: string[] = []): void {
  run('docker', ['build', '--network', 'host', '--label', `${RECIPE_LABEL}=${hash}`, '-t', tag, ...extra, context]);
}
