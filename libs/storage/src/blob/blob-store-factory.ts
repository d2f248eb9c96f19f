import type { AppConfig } from '@tq/config';
import { BlobStoreConfigError } from './blob-errors';
import type { BlobStore } from './blob-store';
import { EncryptedBlobStore } from './crypto/encrypted-blob-store';
import { LocalBlobStore } from './local-blob-store';
import { S3BlobStore } from './s3-blob-store';

type BlobConfig = Pick<
  AppConfig,
  | 'BLOB_STORE'
  | 'ARTIFACT_DIR'
  | 'S3_BUCKET'
  | 'S3_PREFIX'
  | 'S3_ENDPOINT'
  | 'S3_REGION'
  | 'S3_FORCE_PATH_STYLE'
  | 'S3_ACCESS_KEY_ID'
  | 'S3_SECRET_ACCESS_KEY'
> &
  Partial<Pick<AppConfig, 'ENCRYPTION_KEYS' | 'ENCRYPTION_KEY_ID' | 'ENCRYPTION_READ_PLAINTEXT'>>;

/**
 * The blob store the configuration names, encrypted at rest when ENCRYPTION_KEYS is set. Not
 * checked yet: call `check()` at start-up, which turns a missing bucket or denied access into a
 * BlobStoreConfigError naming the setting.
 */
export function blobStoreFromConfig(config: BlobConfig): BlobStore {
  const store = plainStoreFromConfig(config);
  if (!config.ENCRYPTION_KEYS?.length) return store;
  return new EncryptedBlobStore(store, {
    keys: config.ENCRYPTION_KEYS,
    ...(config.ENCRYPTION_KEY_ID ? { activeId: config.ENCRYPTION_KEY_ID } : {}),
    readPlaintext: config.ENCRYPTION_READ_PLAINTEXT ?? false,
  });
}

function plainStoreFromConfig(config: BlobConfig): BlobStore {
  if (config.BLOB_STORE === 'local') return new LocalBlobStore(config.ARTIFACT_DIR);
  if (!config.S3_BUCKET) throw new BlobStoreConfigError('S3_BUCKET', 'is required when BLOB_STORE=s3');
  if (!config.S3_ACCESS_KEY_ID !== !config.S3_SECRET_ACCESS_KEY)
    throw new BlobStoreConfigError(
      config.S3_ACCESS_KEY_ID ? 'S3_SECRET_ACCESS_KEY' : 'S3_ACCESS_KEY_ID',
      'S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY go together (neither: the SDK default credential chain)',
    );
  return new S3BlobStore({
    bucket: config.S3_BUCKET,
    prefix: config.S3_PREFIX,
    region: config.S3_REGION,
    forcePathStyle: config.S3_FORCE_PATH_STYLE,
    ...(config.S3_ENDPOINT ? { endpoint: config.S3_ENDPOINT } : {}),
    ...(config.S3_ACCESS_KEY_ID && config.S3_SECRET_ACCESS_KEY
      ? { credentials: { accessKeyId: config.S3_ACCESS_KEY_ID, secretAccessKey: config.S3_SECRET_ACCESS_KEY } }
      : {}),
  });
}
