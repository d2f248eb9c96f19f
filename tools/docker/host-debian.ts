import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The host's Debian release and the mirror its apt uses for it, so the test images are built from
 * the same suite (the host's Node binary then finds the same glibc and libstdc++) and the same
 * mirror apt already reaches. Reads /etc/os-release and /etc/apt/sources.list(.d) (one-line and
 * deb822 formats); fails naming what it could not find.
 */
export function hostDebian(): { suite: string; mirror: string } {
  const osRelease = readFileSync('/etc/os-release', 'utf8');
  const suite = /^VERSION_CODENAME=("?)([\w-]+)\1$/m.exec(osRelease)?.[2];
  if (!/^ID=("?)debian\1$/m.test(osRelease) || !suite)
    throw new Error(
      'the test images are built with debootstrap from the host Debian release: /etc/os-release names none',
    );
  const mirror = aptSources().find((s) => s.suites.includes(suite))?.uri;
  if (!mirror) throw new Error(`no apt source in /etc/apt/sources.list(.d) serves "deb ... ${suite}"`);
  return { suite, mirror: mirror.replace(/\/$/, '') };
}

function aptSources(): Array<{ uri: string; suites: string[] }> {
  const out: Array<{ uri: string; suites: string[] }> = [];
  const files = ['/etc/apt/sources.list'];
  const dir = '/etc/apt/sources.list.d';
  if (existsSync(dir)) files.push(...readdirSync(dir).map((f) => join(dir, f)));
  for (const file of files.filter((f) => existsSync(f))) {
    const text = readFileSync(file, 'utf8');
    if (file.endsWith('.list'))
      for (const line of text.split('\n')) {
        // deb [options] uri suite components...
        const m = /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
        if (m?.[1] && m[2]) out.push({ uri: m[1], suites: [m[2]] });
      }
    else if (file.endsWith('.sources'))
      for (const stanza of text.split(/\n\s*\n/)) {
        const field = (name: string) =>
          new RegExp(`^${name}:\\s*(.*)$`, 'mi').exec(stanza.replace(/^#.*$/gm, ''))?.[1]?.trim().split(/\s+/) ?? [];
        if (!field('Types').includes('deb') || /^Enabled:\s*no/im.test(stanza)) continue;
        for (const uri of field('URIs')) out.push({ uri, suites: field('Suites') });
      }
  }
  return out;
}
