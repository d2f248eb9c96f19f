import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { dockerBuild, recipeHash, upToDate } from './build';

const ROOT = join(__dirname, '..', '..', '..');
const DIST = join(ROOT, 'dist');
export const S3_STANDIN_IMAGE = 'tq-test-s3:local';
/** The compiled files the stand-in runs (relative to dist/): its main, the tests' front, what they import. */
const FILES = ['tools/docker/s3-standin-main.js', 'libs/storage/test/s3rver-front.js', 'tools/free-port.js'];

/**
 * An S3 stand-in image for a compose `minio` service in the tests: the repository's s3rver
 * (devDependency, the version package-lock.json installed) with the conditional-write front the
 * storage tests use, on the test node image (`nodeImage`). node_modules is copied from this
 * checkout (s3rver and what it requires, resolved as Node resolves them), so the build needs no
 * network. Needs a build (`npm run build`) first. Kept while its recipe hash matches.
 */
export function ensureS3StandinImage(nodeImage: string): string {
  // The node image's id: a rebuilt node image rebuilds this one.
  const nodeImageId = spawnSync('docker', ['image', 'inspect', '--format', '{{.Id}}', nodeImage], {
    encoding: 'utf8',
  }).stdout.trim();
  if (!nodeImageId) throw new Error(`${nodeImage} is not built: see tools/docker/images.ts`);
  const modules = moduleClosure('s3rver');
  const sources = FILES.map((f) => {
    if (!existsSync(join(DIST, f))) throw new Error(`dist/${f} is missing: run npm run build first`);
    return readFileSync(join(DIST, f), 'utf8');
  });
  const dockerfile = [
    `FROM ${nodeImage}`,
    'WORKDIR /app',
    'COPY app /app',
    'USER node',
    'ENV S3_HOST=127.0.0.1 S3_PORT=9000 S3_BUCKET=tq',
    // s3rver encrypts ListObjectsV2 continuation tokens with DES, which OpenSSL 3 only has as legacy.
    'CMD ["node", "--openssl-legacy-provider", "dist/tools/docker/s3-standin-main.js"]',
    'HEALTHCHECK --interval=2s --timeout=3s --retries=30 CMD ["node", "-e", ' +
      '"fetch(`http://${process.env.S3_HOST}:${process.env.S3_PORT}/`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]',
    '',
  ].join('\n');
  const versions = modules.map((dir) => `${relative(ROOT, dir)}@${packageVersion(dir)}`);
  const hash = recipeHash({ nodeImageId, dockerfile, sources, versions });
  if (upToDate(S3_STANDIN_IMAGE, hash)) return S3_STANDIN_IMAGE;
  const ctx = mkdtempSync(join(tmpdir(), 'tq-s3-image-'));
  try {
    writeFileSync(join(ctx, 'Dockerfile'), dockerfile);
    for (const f of FILES) cpSync(join(DIST, f), join(ctx, 'app', 'dist', f));
    for (const dir of modules) cpSync(dir, join(ctx, 'app', relative(ROOT, dir)), { recursive: true });
    dockerBuild(S3_STANDIN_IMAGE, hash, ctx);
  } finally {
    rmSync(ctx, { recursive: true, force: true });
  }
  return S3_STANDIN_IMAGE;
}

/** The package folders `name` needs at run time, found from the repository root as Node finds them. */
function moduleClosure(name: string): string[] {
  const seen = new Set<string>();
  const visit = (pkg: string, from: string) => {
    const dir = packageDir(pkg, from);
    if (!dir || seen.has(dir)) return;
    seen.add(dir);
    const meta = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
      optionalDependencies?: Record<string, string>;
    };
    for (const dep of Object.keys({ ...meta.dependencies, ...meta.optionalDependencies })) visit(dep, dir);
  };
  visit(name, ROOT);
  if (!seen.size) throw new Error(`${name} is not installed: run npm ci`);
  return [...seen];
}

/** node_modules/<pkg> as seen from `from` (walking up, as require does); undefined for an absent optional one. */
function packageDir(pkg: string, from: string): string | undefined {
  try {
    return dirname(createRequire(join(from, 'package.json')).resolve(`${pkg}/package.json`));
  } catch {
    // Packages whose "exports" hide package.json: look for the folder directly.
    for (let dir = from; ; dir = dirname(dir)) {
      const candidate = join(dir, 'node_modules', pkg);
      if (existsSync(join(candidate, 'package.json'))) return candidate;
      if (dirname(dir) === dir) return undefined;
    }
  }
}

function packageVersion(dir: string): string {
  return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
}
