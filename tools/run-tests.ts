import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ensureRedis } from './ensure-redis';
import { ensureTestPrerequisites } from './test-prerequisites';

/**
 * `npm test`: runs the static checks (`npm run check`: lint, format, cycles), makes sure Redis and
 * the tools the tests drive (headless Chromium, docker-compose) are there, then runs every compiled
 * *.test.js under node's test runner, one file at a time (the machine has 2 cores and most tests run
 * real worker processes). Args filter by substring and skip the static checks, so that
 * `npm test -- <filter>` stays quick while working on one thing.
 */
async function main(): Promise<void> {
  const filters = process.argv.slice(2);
  if (filters.length === 0) runStaticChecks();
  ensureTestPrerequisites();
  const redis = await ensureRedis();
  console.log(`redis: ${redis.url} (${redis.source})`);
  const root = join(__dirname, '..');
  const files = findTests(root).filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
  if (files.length === 0) throw new Error(`no test files match ${filters.join(' ')}`);
  // Through a shell that raises the soft limit on open files to the hard one (test/connections
  // opens 10,000 sockets; a soft limit of 1,024 is common), for the runner and every process it starts.
  const run = spawnSync(
    'sh',
    [
      '-c',
      'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"',
      process.execPath,
      '--test',
      '--test-concurrency=1',
      '--test-reporter=spec',
      ...files,
    ],
    { stdio: 'inherit', env: { ...process.env, REDIS_URL: redis.url } },
  );
  await redis.stop();
  process.exit(run.status ?? 1);
}

/** Seconds, against the minutes the tests take: fail on them first. */
function runStaticChecks(): void {
  const run = spawnSync('npm', ['run', '--silent', 'check'], { stdio: 'inherit' });
  if (run.status !== 0) throw new Error('static checks failed: see `npm run check` above');
}

function findTests(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (name === 'node_modules') continue;
    if (statSync(path).isDirectory()) out.push(...findTests(path));
    else if (name.endsWith('.test.js')) out.push(relative(process.cwd(), path));
  }
  return out.sort();
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
