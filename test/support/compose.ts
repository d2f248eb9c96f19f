import { spawnSync } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { ensureDockerEngine } from '../../tools/docker/engine';
import { ensureTestImages } from '../../tools/docker/images';
import { removeStaleBuilds } from '../../tools/docker/prune';
import { ensureS3StandinImage } from '../../tools/docker/s3-image';
import { S3RVER_CREDENTIALS } from '../../libs/storage/test/s3-test-server';
import { freeListeningPort } from '../../tools/free-port';

const ROOT = join(__dirname, '..', '..', '..');
/** The override that puts every service on the host network (sources: test/compose/). */
const OVERRIDE = join(ROOT, 'test', 'compose', 'host-network.yml');

interface ComposeFile {
  services: Record<string, { network_mode?: string; ports?: unknown }>;
}

/**
 * docker-compose.yml really running under a unique project name: docker-compose.yml plus
 * test/compose/host-network.yml, merged by docker-compose itself (`config`). One step is ours:
 * compose v1 merges `ports` lists (an override cannot drop the API's published port) and refuses
 * published ports on the host network, while the engine would only ignore them; so the merged file
 * loses `ports` on host-network services and is run as is. down() removes containers and volumes.
 */
export class ComposeProject {
  private readonly built: string[] = [];
  private constructor(
    readonly name: string,
    readonly apiUrl: string,
    /** TQ_ADMIN_KEY the api service runs with (docker-compose.yml passes it on). */
    readonly adminKey: string,
    readonly redisPort: number,
    private readonly dir: string,
    private readonly file: string,
    private readonly startedAt: Date,
    private readonly nodeImage: string,
  ) {}

  static async up(opts: { workers: number }): Promise<ComposeProject> {
    await ensureDockerEngine();
    const images = ensureTestImages();
    ensureS3StandinImage(images.node); // in the place of minio (test/compose/host-network.yml)
    // Servers of other processes (the containers): ports no outgoing connection can take meanwhile.
    const [redisPort, apiPort, s3Port, servePort] = [
      await freeListeningPort(),
      await freeListeningPort(),
      await freeListeningPort(),
      await freeListeningPort(),
    ];
    const dir = mkdtempSync(join(tmpdir(), 'tq-compose-run-'));
    const name = `tqcompose${randomUUID().slice(0, 8)}`;
    const file = join(dir, 'merged.yml');
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    const adminKey = randomBytes(32).toString('base64url');
    const project = new ComposeProject(name, apiUrl, adminKey, redisPort, dir, file, new Date(), images.node);
    try {
      // An empty env file: a developer's .env must not change what the test runs.
      writeFileSync(join(dir, 'empty.env'), '');
      const vars = {
        TQ_TEST_REDIS_PORT: String(redisPort),
        TQ_TEST_API_PORT: String(apiPort),
        TQ_TEST_S3_PORT: String(s3Port),
        TQ_TEST_SERVE_PORT: String(servePort),
        API_PORT: String(apiPort),
        TQ_ADMIN_KEY: adminKey,
        // The stand-in is s3rver, which knows one access key (it checks the id, not the signature).
        S3_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
        S3_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
        // Its own image name: a developer's tensorqueue:latest stays as it is; a tag per checkout, so
        // two worktrees testing at once do not run each other's build. Kept as the next build's cache.
        TQ_IMAGE: 'tq-compose-test',
        TQ_TAG: createHash('sha256').update(ROOT).digest('hex').slice(0, 12),
      };
      const base = ['--env-file', join(dir, 'empty.env'), '-f', join(ROOT, 'docker-compose.yml'), '-f', OVERRIDE];
      // YAML 1.1 both ways, as docker-compose (PyYAML) reads it: `no` and `yes` stay strings.
      const merged = parse(compose([...base, 'config'], vars), { version: '1.1' }) as ComposeFile;
      for (const service of Object.values(merged.services)) if (service.network_mode === 'host') delete service.ports;
      writeFileSync(file, stringify(merged, { version: '1.1' }));
      const output = project.run(['up', '-d', '--build', '--scale', `worker=${opts.workers}`]);
      process.stdout.write(output);
      // The build's layers ("---> <id>"): what down() must not prune.
      project.built.push(...[...output.matchAll(/---> ([0-9a-f]{12,})/g)].map((m) => m[1] ?? ''));
      return project;
    } catch (err) {
      // The error that stopped `up` is the one to report; a failed clean-up only adds to it.
      await project.down().catch((downErr: unknown) => console.error('docker-compose down failed too:', downErr));
      throw err;
    }
  }

  /** The headers of an admin's request to the api service. */
  clientHeaders(): Record<string, string> {
    return { authorization: `Bearer ${this.adminKey}` };
  }

  /** docker-compose on the merged file; stdout, or fails with stderr and the end of stdout (a build's log). */
  run(args: string[], stdio: 'pipe' | 'inherit' = 'pipe'): string {
    return compose(['-p', this.name, '--project-directory', ROOT, '-f', this.file, ...args], {}, stdio);
  }

  /** Container ids of a service, running or not. */
  containers(service: string): string[] {
    return this.run(['ps', '-q', service]).split('\n').filter(Boolean);
  }

  /** The container of `service` a host pid runs in (workers share the host pid namespace). */
  containerOfPid(service: string, pid: number): string | undefined {
    return this.containers(service).find((id) => {
      const top = spawnSync('docker', ['top', id, '-o', 'pid'], { encoding: 'utf8' });
      return top.status === 0 && top.stdout.split('\n').some((l) => l.trim() === String(pid));
    });
  }

  logs(tail = 60): string {
    return this.run(['logs', '--no-color', `--tail=${tail}`]);
  }

  /**
   * Containers, networks and volumes go; so do the images earlier runs left dangling. This run's
   * image stays: its layers are the next build's cache.
   */
  async down(): Promise<void> {
    try {
      // No merged file: nothing was started.
      if (existsSync(this.file)) this.run(['down', '-v', '--remove-orphans', '--timeout', '10'], 'inherit');
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
      const removed = removeStaleBuilds(this.nodeImage, this.startedAt, this.built);
      if (removed) console.log(`removed ${removed} stale image(s) of earlier compose-run builds`);
    }
  }
}

/** docker-compose v1 (Debian's), told to build through the engine API (docker-py, legacy builder), where `build.network` applies. */
function compose(args: string[], vars: Record<string, string>, stdio: 'pipe' | 'inherit' = 'pipe'): string {
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, COMPOSE_DOCKER_CLI_BUILD: '0', ...vars };
  const r = spawnSync('docker-compose', args, {
    env,
    encoding: 'utf8',
    stdio: ['ignore', stdio === 'inherit' ? 'inherit' : 'pipe', 'pipe'],
    maxBuffer: 64 << 20,
  });
  if (r.stderr && stdio === 'inherit') process.stderr.write(r.stderr);
  if (r.status !== 0)
    throw new Error(
      `docker-compose ${args.join(' ')} failed (${r.status}): ${r.stderr}\n${(r.stdout ?? '').slice(-4000)}`,
    );
  return r.stdout ?? '';
}
