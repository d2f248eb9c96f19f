import { randomBytes, randomUUID } from 'node:crypto';
import { link, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FieldError } from '@tq/contracts';
import type { ArtifactStore } from './artifact-store';

const SECRET_NAME = /^[a-z0-9-]{1,64}$/;

/**
 * A random key made once and kept in the artifact store (secrets/<name>, mode 0600): every
 * process sharing the store (the API and its restarts, several API replicas on one volume) reads
 * the same one. Written to a unique temporary file, then hard-linked into place: link() fails
 * when the name exists, so two processes racing on the first start agree on the first key, and no
 * reader ever sees a partly written file.
 */
export async function createOnceSecret(store: ArtifactStore, name: string, bytes = 32): Promise<Buffer> {
  if (!SECRET_NAME.test(name)) throw new FieldError('name', `secret names are ${SECRET_NAME.source}`);
  const dir = join(store.root, 'secrets');
  const path = join(dir, name);
  const existing = await readSecret(path);
  if (existing) return existing;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const temp = join(dir, `.${name}.${randomUUID()}.tmp`);
  await writeFile(temp, randomBytes(bytes).toString('base64'), { mode: 0o600, flag: 'wx' });
  try {
    await link(temp, path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
  } finally {
    await rm(temp, { force: true });
  }
  const kept = await readSecret(path);
  if (!kept) throw new Error(`secret "${name}" is empty in the artifact store`);
  return kept;
}

async function readSecret(path: string): Promise<Buffer | undefined> {
  const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  const key = text?.trim() ? Buffer.from(text.trim(), 'base64') : undefined;
  return key?.length ? key : undefined;
}
