import { spawnSync } from 'node:child_process';

/**
 * Debian packages the tests drive for real: a browser for the dashboard, promtool for /metrics, and
 * for docker-compose.yml run for real (test/compose-run): compose, the engine (docker.io; the test
 * starts dockerd when none answers) and debootstrap, which builds the base images locally.
 */
const PREREQUISITES = [
  { command: 'chromium', args: ['--version'], pkg: 'chromium' },
  { command: 'docker-compose', args: ['version'], pkg: 'docker-compose' },
  { command: 'dockerd', args: ['--version'], pkg: 'docker.io' },
  { command: 'debootstrap', args: ['--version'], pkg: 'debootstrap' },
  { command: 'redis-server', args: ['--version'], pkg: 'redis-server' },
  // promtool lints the /metrics of the API and of a worker (test/api-metrics).
  { command: 'promtool', args: ['--version'], pkg: 'prometheus' },
] as const;

/** Installs what is missing with apt when running as root on Debian; otherwise says what to run. */
export function ensureTestPrerequisites(): void {
  const missing = PREREQUISITES.filter((p) => spawnSync(p.command, p.args).status !== 0).map((p) => p.pkg);
  if (missing.length === 0) return;
  const canApt = process.getuid?.() === 0 && spawnSync('apt-get', ['--version']).status === 0;
  if (!canApt)
    throw new Error(
      `missing test tools: ${missing.join(', ')}. Install them (Debian/Ubuntu: sudo apt-get install -y ${missing.join(' ')}) and run again.`,
    );
  console.log(`installing ${missing.join(', ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (spawnSync('apt-get', ['update', '-q'], { stdio: 'inherit', env }).status !== 0)
    throw new Error('apt-get update failed');
  if (
    spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], { stdio: 'inherit', env })
      .status !== 0
  ) {
    throw new Error(`apt-get install ${missing.join(' ')} failed`);
  }
}
