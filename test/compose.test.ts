import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import ts from 'typescript';

/**
 * No Docker engine runs on the build machines, so docker-compose.yml is checked the way the engine
 * would first read it: `docker-compose config` validates and normalises it (defaults interpolated,
 * anchors expanded), and the assertions run on that output. The Dockerfile is read for the stages the
 * compose file builds and the facts the GPU image depends on.
 */

interface Device {
  driver?: string;
  count?: string | number;
  device_ids?: string[];
  capabilities?: string[];
}
interface Service {
  image?: string;
  build?: { context?: string; dockerfile?: string; target?: string; args?: Record<string, string> };
  command?: string[] | string;
  environment?: Record<string, string | null>;
  ports?: Array<string | { published?: string | number; target?: number | string }>;
  volumes?: Array<string | { type?: string; source?: string; target?: string }>;
  depends_on?: Record<string, { condition?: string }> | string[];
  healthcheck?: { test?: string[] | string; disable?: boolean };
  profiles?: string[];
  container_name?: string;
  deploy?: { resources?: { reservations?: { devices?: Device[] } } };
}
interface Config {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

const ROOT = findRoot(__dirname);
const APP_SERVICES = ['api', 'worker', 'worker-gpu'];

function findRoot(from: string): string {
  for (let dir = from; dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, 'docker-compose.yml')) && existsSync(join(dir, 'package.json'))) return dir;
  }
  throw new Error(`no docker-compose.yml above ${from}`);
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, input?: string): string {
  const res = spawnSync(cmd, args, { cwd: ROOT, env, input, encoding: 'utf8' });
  if (res.error)
    throw new Error(`${cmd} could not run (${res.error.message}); Debian: apt-get install -y docker-compose`);
  if (res.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${res.status}: ${res.stderr}`);
  return res.stdout;
}

/**
 * `docker-compose config` with only PATH/HOME and the given variables, and an empty env file, so a
 * developer's shell or .env cannot change the result. Compose v2 prints JSON. Compose v1 (Debian
 * bookworm's package) prints only YAML: it is parsed by the PyYAML that produced it, through the
 * interpreter on docker-compose's own #! line, so the project needs no YAML package for this test.
 */
function composeConfig(profiles: string[], vars: Record<string, string> = {}): Config {
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, ...vars };
  const dir = mkdtempSync(join(tmpdir(), 'tq-compose-'));
  try {
    writeFileSync(join(dir, 'empty.env'), '');
    const args = [
      '-f',
      join(ROOT, 'docker-compose.yml'),
      '--env-file',
      join(dir, 'empty.env'),
      ...profiles.flatMap((p) => ['--profile', p]),
      'config',
    ];
    const major = Number(/(\d+)\./.exec(run('docker-compose', ['version', '--short'], env))?.[1]);
    if (major >= 2) return JSON.parse(run('docker-compose', [...args, '--format', 'json'], env)) as Config;
    const bin = run('sh', ['-c', 'command -v docker-compose'], env).trim();
    const shebang = readFileSync(bin, 'utf8').split('\n', 1)[0] ?? '';
    if (!shebang.startsWith('#!'))
      throw new Error(`${bin} is compose v1 without a #! interpreter line; cannot read its YAML`);
    const [interp, ...interpArgs] = shebang.slice(2).trim().split(/\s+/);
    if (!interp) throw new Error(`${bin} has an empty #! line; cannot read its YAML`);
    const toJson = 'import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)';
    return JSON.parse(run(interp, [...interpArgs, '-c', toJson], env, run('docker-compose', args, env))) as Config;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A service the config must have: a missing one fails the test that names it. */
function service(config: Config, name: string): Service {
  const s = config.services[name];
  assert.ok(s, `service ${name} is in the config`);
  return s;
}

const mounts = (s: Service) =>
  (s.volumes ?? []).map((v) => {
    if (typeof v !== 'string') return { source: v.source, target: v.target };
    const [source, target] = v.split(':');
    return { source, target };
  });
/** Ports as {published, target}: v1 prints short strings ("[ip:]host:container[/proto]") or objects, v2 objects. */
const published = (s: Service) =>
  (s.ports ?? []).map((p) => {
    if (typeof p !== 'string') return { published: String(p.published), target: String(p.target) };
    const parts = p.replace(/\/\w+$/, '').split(':');
    return { published: parts.at(-2), target: parts.at(-1) };
  });
const commandOf = (s: Service) => (Array.isArray(s.command) ? s.command.join(' ') : (s.command ?? ''));
const dependsHealthy = (s: Service, on: string) =>
  !Array.isArray(s.depends_on) && s.depends_on?.[on]?.condition === 'service_healthy';
const hasHealthcheck = (s: Service) =>
  !!s.healthcheck?.test && !s.healthcheck.disable && String(s.healthcheck.test) !== 'NONE';

/** Dockerfile instructions with continuation lines joined and comments dropped, grouped by stage. */
function readDockerfile(path: string) {
  const lines = readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => !/^\s*#/.test(l));
  const joined = lines
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const globalArgs: Record<string, string> = {};
  const stages: Array<{
    name: string;
    from: string;
    args: Record<string, string>;
    env: Record<string, string>;
    user?: string;
    cmd?: string;
    body: string[];
  }> = [];
  for (const line of joined) {
    const [keyword = '', ...rest] = line.split(/\s+/);
    const text = rest.join(' ');
    const stage = stages.at(-1);
    const upper = keyword.toUpperCase();
    if (upper === 'FROM') {
      const [, image, name] = /^(\S+)(?:\s+AS\s+(\S+))?/i.exec(text) ?? [];
      if (!image) throw new Error(`Dockerfile: FROM without an image: ${line}`);
      stages.push({
        name: name ?? String(stages.length),
        from: image.replace(/\$\{(\w+)\}/g, (_, v: string) => globalArgs[v] ?? ''),
        args: {},
        env: {},
        body: [],
      });
    } else if (upper === 'ARG') {
      const [k = '', v = ''] = text.split('=');
      (stage ? stage.args : globalArgs)[k] = v;
    } else if (stage && upper === 'ENV') {
      for (const pair of text.split(/\s+/))
        if (pair.includes('=')) stage.env[pair.slice(0, pair.indexOf('='))] = pair.slice(pair.indexOf('=') + 1);
    } else if (stage && upper === 'USER') stage.user = text;
    else if (stage && upper === 'CMD') stage.cmd = text;
    stage?.body.push(line);
  }
  return stages;
}

describe('docker-compose.yml and Dockerfile', () => {
  let base: Config;
  let gpu: Config;
  before(() => {
    base = composeConfig([]);
    gpu = composeConfig(['gpu']);
  });

  test('redis, minio (+ minio-init), api, serve and worker run by default; worker-gpu only under the gpu profile', () => {
    const active = Object.entries(base.services)
      .filter(([, s]) => !s.profiles?.length)
      .map(([n]) => n)
      .sort();
    assert.deepEqual(active, ['api', 'minio', 'minio-init', 'redis', 'serve', 'worker']);
    assert.deepEqual(service(gpu, 'worker-gpu').profiles, ['gpu']);
  });

  test('redis keeps an append-only file on a named volume, with noeviction for BullMQ', () => {
    const redis = service(base, 'redis');
    assert.match(redis.image ?? '', /^redis:7\b/);
    assert.match(commandOf(redis), /--appendonly yes/);
    assert.match(commandOf(redis), /--maxmemory-policy noeviction/);
    const data = mounts(redis).find((m) => m.target === '/data');
    assert.ok(
      data?.source && Object.keys(base.volumes ?? {}).includes(data.source),
      'redis /data is a top-level named volume',
    );
    assert.ok(hasHealthcheck(redis));
  });

  test('the api publishes 3000, waits for a healthy redis and has a health check', () => {
    const api = service(base, 'api');
    assert.deepEqual(
      published(api).map((p) => p.target),
      ['3000'],
    );
    assert.equal(api.environment?.PORT, '3000');
    assert.equal(api.environment?.HOST, '0.0.0.0');
    assert.ok(dependsHealthy(api, 'redis'));
    assert.ok(hasHealthcheck(api));
  });

  test('the api: TQ_ADMIN_KEY from the host (empty: the first-start key), keyless metrics on 9465 not published', () => {
    const api = service(base, 'api');
    // Empty means unset to the app (loadConfig): it makes the first admin key and logs it once.
    assert.equal(api.environment?.TQ_ADMIN_KEY ?? '', '');
    assert.equal(
      service(composeConfig([], { TQ_ADMIN_KEY: 'x'.repeat(40) }), 'api').environment?.TQ_ADMIN_KEY,
      'x'.repeat(40),
    );
    assert.equal(api.environment?.API_METRICS_PORT, '9465');
    assert.ok(!published(api).some((p) => p.target === '9465'), 'the keyless metrics port is not published');
    assert.equal(service(base, 'worker').environment?.TQ_ADMIN_KEY, undefined, 'workers do not get the admin key');
  });

  test('api, worker and worker-gpu share no folder: artifacts in the minio bucket, redis by service name', () => {
    const shared = new Set<string>();
    for (const name of APP_SERVICES) {
      const s = service(gpu, name);
      const env = s.environment ?? {};
      assert.equal(env.BLOB_STORE, 's3', `${name}: BLOB_STORE`);
      assert.equal(new URL(String(env.S3_ENDPOINT)).host, 'minio:9000', `${name}: S3_ENDPOINT is the minio service`);
      assert.equal(env.S3_FORCE_PATH_STYLE, 'true', `${name}: path-style for MinIO`);
      assert.equal(env.S3_BUCKET, 'tensorqueue', `${name}: S3_BUCKET`);
      assert.ok(env.S3_ACCESS_KEY_ID && env.S3_SECRET_ACCESS_KEY, `${name}: both keys`);
      assert.equal(
        mounts(s).find((m) => m.target === env.ARTIFACT_DIR),
        undefined,
        `${name}: ARTIFACT_DIR is scratch, no volume`,
      );
      for (const m of mounts(s)) if (m.target !== '/data/cuda-cache') shared.add(`${name}: ${m.source}:${m.target}`);
      const redisUrl = new URL(String(env.REDIS_URL));
      assert.equal(redisUrl.hostname, 'redis', `${name}: REDIS_URL points at the redis service`);
      assert.ok(dependsHealthy(s, 'redis'), `${name} waits for a healthy redis`);
      const deps = s.depends_on as Record<string, { condition?: string }>;
      assert.equal(deps['minio-init']?.condition, 'service_completed_successfully', `${name} waits for the bucket`);
    }
    assert.deepEqual([...shared], [], 'no app container mounts a volume for artifacts');
    const minio = service(gpu, 'minio');
    assert.match(String(minio.image), /^minio\/minio:RELEASE\./, 'a pinned MinIO release');
    assert.ok(
      mounts(minio).some((m) => m.target === '/data'),
      'MinIO keeps /data on a volume',
    );
    assert.ok(hasHealthcheck(minio));
    const app = service(gpu, 'api').environment ?? {};
    assert.equal(minio.environment?.MINIO_ROOT_USER, app.S3_ACCESS_KEY_ID, 'the apps use the MinIO keys');
    assert.equal(minio.environment?.MINIO_ROOT_PASSWORD, app.S3_SECRET_ACCESS_KEY);
    const init = service(gpu, 'minio-init');
    assert.match(commandOf(init), /mc mb --ignore-existing/);
    assert.equal(init.environment?.S3_BUCKET, app.S3_BUCKET, 'minio-init makes the bucket the apps use');
    assert.ok(dependsHealthy(init, 'minio'));
  });

  test('workers can be scaled: no container_name, no host ports, worker command, health check', () => {
    for (const name of ['worker', 'worker-gpu']) {
      const s = service(gpu, name);
      assert.equal(s.container_name, undefined, `${name} has no container_name`);
      assert.deepEqual(s.ports ?? [], [], `${name} publishes no host port`);
      assert.match(commandOf(s), /dist\/apps\/worker\/src\/main\.js/);
      assert.ok(hasHealthcheck(s), `${name} has a health check`);
    }
  });

  test('worker-gpu reserves NVIDIA GPUs, builds the gpu stage and lets workers share a GPU', () => {
    const s = service(gpu, 'worker-gpu');
    const devices = s.deploy?.resources?.reservations?.devices ?? [];
    const nvidia = devices.find((d) => d.driver === 'nvidia' && d.capabilities?.includes('gpu'));
    assert.ok(nvidia, 'an nvidia device reservation with the gpu capability');
    // Compose v2 normalises `count: all` to -1.
    assert.ok(
      nvidia.count === 'all' || nvidia.count === -1 || Number(nvidia.count) > 0 || (nvidia.device_ids?.length ?? 0) > 0,
      'a GPU count or ids',
    );
    assert.equal(s.build?.target, 'gpu');
    assert.equal(s.environment?.TF_FORCE_GPU_ALLOW_GROWTH, 'true');
    assert.equal(s.environment?.TQ_BACKEND, 'tensorflow');
  });

  test('defaults come from ${VAR:-default}; a host REDIS_URL does not leak into the containers', () => {
    const custom = composeConfig([], {
      WORKER_CONCURRENCY: '3',
      API_PORT: '8080',
      QUEUE_PREFIX: 'prod',
      REDIS_URL: 'redis://127.0.0.1:6379',
    });
    const worker = service(custom, 'worker');
    assert.equal(worker.environment?.WORKER_CONCURRENCY, '3');
    assert.equal(worker.environment?.QUEUE_PREFIX, 'prod');
    assert.deepEqual(
      published(service(custom, 'api')).map((p) => p.published),
      ['8080'],
    );
    assert.equal(worker.environment?.REDIS_URL, 'redis://redis:6379');
    assert.equal(service(base, 'worker').environment?.WORKER_CONCURRENCY, '1');
  });

  test("every variable docs/deploy.md's configuration table names is read by the compose file", () => {
    const doc = readFileSync(join(ROOT, 'docs', 'deploy.md'), 'utf8');
    const lines = doc.slice(doc.indexOf('## Configuration')).split('\n');
    const start = lines.findIndex((l) => l.startsWith('|'));
    const end = lines.findIndex((l, i) => i > start && !l.startsWith('|'));
    const names = lines
      .slice(start + 2, end) // past the header and its rule
      .flatMap((row) => [...(row.split('|')[1] ?? '').matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1]!));
    assert.ok(names.length >= 15, `the table names ${names.length} variables`);
    // Each set to a number of its own, all at once: a variable compose never reads leaves no trace.
    const values = Object.fromEntries(names.map((name, i) => [name, String(47101 + i)]));
    const text = JSON.stringify(composeConfig(['gpu'], values));
    const unread = names.filter((name) => !new RegExp(`(^|\\D)${values[name]}(\\D|$)`).test(text));
    assert.deepEqual(unread, [], 'named in docs/deploy.md, not read by docker-compose.yml');
  });

  test('the Dockerfile has every stage compose builds, and the GPU image facts hold', () => {
    const stages = readDockerfile(join(ROOT, 'Dockerfile'));
    const byName = new Map(stages.map((s) => [s.name, s]));
    for (const [name, s] of Object.entries(gpu.services).filter(([, s]) => s.build)) {
      assert.equal(s.build?.dockerfile, 'Dockerfile', `${name} builds the one Dockerfile`);
      assert.ok(
        byName.has(String(s.build?.target)),
        `${name} targets stage ${s.build?.target}, stages: ${[...byName.keys()].join(', ')}`,
      );
    }
    const cpu = byName.get('cpu');
    const gpuStage = byName.get('gpu');
    assert.ok(cpu && gpuStage && byName.get('gpu-build'));
    for (const s of [cpu, gpuStage])
      assert.ok(s.user && !/^(root|0)(:|$)/.test(s.user), `stage ${s.name} runs as a non-root user`);
    assert.equal(gpuStage.from, 'nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04');
    assert.equal(gpuStage.env.TF_FORCE_GPU_ALLOW_GROWTH, 'true');
    // Two tfjs versions would mean two tfjs-core engines: tfjs-node-gpu would register its backend on the wrong one.
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    assert.equal(byName.get('gpu-build')?.args.TFJS_NODE_GPU_VERSION, pkg.dependencies['@tensorflow/tfjs']);
    assert.ok(
      byName.get('gpu-build')?.body.some((l) => /ONNXRUNTIME_NODE_INSTALL=(1|true|ON)\b/.test(l)),
      'gpu-build forces the ORT CUDA provider install',
    );
  });

  test('the build context keeps what `npm run build` compiles, and the build stage copies it all', () => {
    const { config } = ts.readConfigFile(join(ROOT, 'tsconfig.json'), (p) => ts.sys.readFile(p)) as {
      config: { include: string[] };
    };
    const needed = [
      // split always yields at least one element.
      ...new Set(config.include.map((p) => p.split('/')[0]!)),
      'package.json',
      'package-lock.json',
      '.npmrc',
      'tsconfig.json',
    ];
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => l.replace(/^\.?\//, '').replace(/\/(\*\*)?$/, ''));
    for (const path of needed) assert.ok(!ignored.includes(path), `.dockerignore drops ${path}, which the build needs`);
    const build = readDockerfile(join(ROOT, 'Dockerfile')).find((s) => s.name === 'build');
    assert.ok(build, 'a stage named build');
    assert.ok(
      build.body.some((l) => /^COPY\s+\.\s+\.\/?$/i.test(l)),
      'the build stage copies the whole context',
    );
    assert.ok(
      build.body.some((l) => /npm run build/.test(l)) && build.body.some((l) => /npm prune --omit=dev/.test(l)),
    );
  });

  test('commands start entry points that the build compiles', () => {
    const stages = readDockerfile(join(ROOT, 'Dockerfile'));
    const cmds = [
      ...Object.values(gpu.services)
        .filter((s) => s.build)
        .map(commandOf),
      ...stages.filter((s) => s.cmd).map((s) => String(s.cmd)),
    ];
    const entries = new Set(cmds.flatMap((c) => c.match(/dist\/[\w/.-]+\.js/g) ?? []));
    assert.ok(
      entries.has('dist/apps/api/src/main.js') && entries.has('dist/apps/worker/src/main.js'),
      [...entries].join(', '),
    );
    // tsconfig's rootDir is '.', outDir 'dist': dist/<path>.js is compiled from <path>.ts.
    for (const entry of entries)
      assert.ok(existsSync(join(ROOT, entry.replace(/^dist\//, '').replace(/\.js$/, '.ts'))), `${entry} has a source`);
  });
});
