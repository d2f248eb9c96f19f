import { ensureDockerEngine } from './engine';
import { ensureTestImages } from './images';

/** `node dist/tools/docker/ensure-images.js`: starts the engine if needed and builds the test base images. */
async function main(): Promise<void> {
  const started = Date.now();
  await ensureDockerEngine();
  const images = ensureTestImages();
  console.log(`${JSON.stringify(images)} ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
