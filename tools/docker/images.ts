import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';
import { RECIPE_LABEL, dockerBuild, recipeHash, run, upToDate } from './build';
import { hostDebian } from './host-debian';

const ROOT = join(__dirname, '..', '..', '..');
/** Bump to rebuild every test image (a change in how they are made that the hashes do not see). */
const RECIPE_VERSION = 1;

export interface TestImages {
  base: string;
  node: string;
  redis: string;
}

/**
 * The base images the Dockerfile (`ARG NODE_IMAGE`, cpu target) and docker-compose.yml (redis)
 * name, built here because no image registry answers: a debootstrapped rootfs of the host's Debian
 * suite, plus the host's Node and npm for the node image, plus Debian's redis-server for the redis
 * image, tagged with exactly the names the files use. Each carries a hash of its recipe; an image
 * with the right tag and hash is kept (cold build: minutes; warm: seconds).
 */
export function ensureTestImages(): TestImages {
  const names = imageNames();
  const debian = hostDebian();
  const base = `tq-test-debian:${debian.suite}`;
  // redis-server comes with the rootfs (debootstrap installs it with its maintainer scripts kept from
  // starting it), so no container ever needs apt; the node image carries the unused binaries.
  const baseHash = recipeHash({ v: RECIPE_VERSION, ...debian, include: ROOTFS_PACKAGES });
  if (!upToDate(base, baseHash)) buildRootfsImage(base, baseHash, debian);

  const node = nodeRecipe(base, baseHash);
  if (!upToDate(names.node, node.hash)) withContext(node.files, (dir) => dockerBuild(names.node, node.hash, dir));

  const redisFile = REDIS_DOCKERFILE(base);
  const redisHash = recipeHash({ v: RECIPE_VERSION, baseHash, redisFile });
  if (!upToDate(names.redis, redisHash))
    withContext({ Dockerfile: redisFile }, (dir) => dockerBuild(names.redis, redisHash, dir));
  return { base, node: names.node, redis: names.redis };
}

/** The names to build, read from the files that use them (a change there moves the test along). */
export function imageNames(): { node: string; redis: string } {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const node = /^ARG NODE_IMAGE=(\S+)\s*$/m.exec(dockerfile)?.[1];
  if (!node) throw new Error('Dockerfile: no `ARG NODE_IMAGE=<image>` default');
  const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')) as {
    services?: { redis?: { image?: string } };
  };
  const redis = compose.services?.redis?.image;
  if (!redis) throw new Error('docker-compose.yml: services.redis.image is not set');
  return { node, redis };
}

const ROOTFS_PACKAGES = ['ca-certificates', 'redis-server'];

function buildRootfsImage(tag: string, hash: string, debian: { suite: string; mirror: string }): void {
  const dir = mkdtempSync(join(tmpdir(), 'tq-rootfs-'));
  try {
    console.log(`debootstrap ${debian.suite} from ${debian.mirror} (a few minutes, once)`);
    const include = `--include=${ROOTFS_PACKAGES.join(',')}`;
    run('debootstrap', ['--variant=minbase', include, debian.suite, dir, debian.mirror], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    // What Debian's own images do: no service starts from a package script inside a container.
    writeFileSync(join(dir, 'usr/sbin/policy-rc.d'), '#!/bin/sh\nexit 101\n', { mode: 0o755 });
    for (const junk of ['var/cache/apt/archives', 'var/lib/apt/lists'])
      rmSync(join(dir, junk), { recursive: true, force: true });
    const label = `LABEL ${RECIPE_LABEL}=${hash}`;
    run('bash', [
      '-o',
      'pipefail',
      '-c',
      'tar -C "$1" --numeric-owner -cf - . | docker import --change "$2" --change "CMD [\\"bash\\"]" - "$3"',
      'import',
      dir,
      label,
      tag,
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The node image: the host's node binary and npm where the official image keeps them, a `node`
 * user (uid 1000, as the Dockerfile's cpu stage expects), and npm set to reach the registry the way
 * the host's npm does (registry, CA file, proxies), since `npm ci` runs in the build stage.
 */
function nodeRecipe(base: string, baseHash: string): { hash: string; files: Record<string, string> } {
  const npmCli = realpathSync(which('npm'));
  const npmDir = dirname(dirname(npmCli)); // <prefix>/lib/node_modules/npm/bin/npm-cli.js
  const npmVersion = (JSON.parse(readFileSync(join(npmDir, 'package.json'), 'utf8')) as { version: string }).version;
  const config = (key: string) => {
    const v = spawnSync('npm', ['config', 'get', key], { encoding: 'utf8' }).stdout.trim();
    return v && v !== 'null' && v !== 'undefined' ? v : undefined;
  };
  const npmrc = ['update-notifier=false', `registry=${config('registry') ?? 'https://registry.npmjs.org/'}`];
  for (const key of ['proxy', 'https-proxy', 'noproxy']) {
    const v = config(key);
    if (v) npmrc.push(`${key}=${v}`);
  }
  const cafile = config('cafile');
  const ca = cafile ? readFileSync(cafile, 'utf8') : '';
  if (ca) npmrc.push('cafile=/usr/local/etc/host-ca.crt');
  const dockerfile = [
    `FROM ${base}`,
    'COPY node /usr/local/bin/node',
    'COPY npm /usr/local/lib/node_modules/npm',
    'COPY npmrc host-ca.crt /usr/local/etc/',
    'RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\',
    ' && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\',
    " && echo 'node:x:1000:1000::/home/node:/bin/bash' >> /etc/passwd \\",
    " && echo 'node:x:1000:' >> /etc/group \\",
    ' && mkdir -p /home/node && chown 1000:1000 /home/node \\',
    ' && node --version && npm --version',
    'CMD ["node"]',
    '',
  ].join('\n');
  const hash = recipeHash({ v: RECIPE_VERSION, baseHash, dockerfile, node: process.version, npmVersion, npmrc, ca });
  return {
    hash,
    files: {
      Dockerfile: dockerfile,
      npmrc: npmrc.join('\n') + '\n',
      'host-ca.crt': ca,
      node: `copy:${realpathSync(process.execPath)}`,
      npm: `copy:${npmDir}`,
    },
  };
}

/** Debian's redis-server as the official redis image runs it: in /data, as the redis user. */
const REDIS_DOCKERFILE = (base: string) =>
  [
    `FROM ${base}`,
    'RUN mkdir -p /data && chown redis:redis /data && redis-server --version',
    'WORKDIR /data',
    'USER redis',
    'EXPOSE 6379',
    'CMD ["redis-server"]',
    '',
  ].join('\n');

/** A temporary build context: `copy:<path>` entries are copied, others written as text. */
function withContext(files: Record<string, string>, build: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'tq-image-'));
  try {
    for (const [name, content] of Object.entries(files))
      if (content.startsWith('copy:')) cpSync(content.slice(5), join(dir, name), { recursive: true });
      else writeFileSync(join(dir, name), content);
    build(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function which(cmd: string): string {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} is not on PATH`);
  return r.stdout.trim();
}
