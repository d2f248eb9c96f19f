import { spawnSync } from 'node:child_process';

/**
 * Removes what earlier builds on top of `base` left behind: every rebuild of a changed tree leaves
 * the previous final image and the untagged build stage (about 2.5 GB together) dangling. Only
 * dangling images that descend from `base` (an image the tests built themselves), were created
 * before `before` and are not in `keep` go: `keep` holds the ids the current build printed, among
 * them its build stage (dangling too, and the next build's cache, even when it was made by an
 * earlier run and reused). Anything not built on the test base image stays. Returns how many went.
 */
export function removeStaleBuilds(base: string, before: Date, keep: readonly string[]): number {
  const baseId = inspect([base])[0]?.Id;
  if (!baseId) return 0;
  const list = (...args: string[]) =>
    lines(spawnSync('docker', ['images', '-q', '--no-trunc', ...args], { encoding: 'utf8' }).stdout);
  // Every image, intermediate layers included, to walk parents; the dangling ones are the candidates.
  const images = new Map(inspect(list('-a')).map((i) => [i.Id, i]));
  const dangling = list('-f', 'dangling=true');
  const descends = (id: string): boolean => {
    for (let at = images.get(id); at; at = images.get(at.Parent)) if (at.Parent === baseId) return true;
    return false;
  };
  const kept = (id: string) => keep.some((k) => id.replace(/^sha256:/, '').startsWith(k));
  const stale = dangling.filter(
    (id) => Date.parse(images.get(id)?.Created ?? '') < before.getTime() && !kept(id) && descends(id),
  );
  // Children first is not needed: rmi of a dangling image takes its untagged, unshared parents along;
  // an id already gone with an earlier one just fails quietly.
  for (const id of stale) spawnSync('docker', ['rmi', id], { stdio: 'ignore' });
  return stale.length;
}

interface ImageInfo {
  Id: string;
  Parent: string;
  Created: string;
}

function inspect(refs: string[]): ImageInfo[] {
  if (refs.length === 0) return [];
  const r = spawnSync('docker', ['image', 'inspect', ...refs], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return r.status === 0 ? (JSON.parse(r.stdout) as ImageInfo[]) : [];
}

const lines = (text: string) => text.split('\n').filter(Boolean);
