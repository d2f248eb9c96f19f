import { ensureDockerEngine } from './engine';
import { ensureTestImages } from './images';
import { ensureS3StandinImage } from './s3-image';

/** `node dist/tools/docker/ensure-images.js`: starts the engine if needed and builds the test images (base images, S3 stand-in). */
async function main(): Promise<void> {
  const started = Date.now();
  await ensureDockerEngine();
  const images = { ...ensureTestImages(), s3: '' };
  images.s3 = ensureS3StandinImage(images.node);
  console.log(`${JSON.stringify(images)} ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
