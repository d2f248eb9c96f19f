import { Global, Inject, Logger, Module, type OnApplicationShutdown } from '@nestjs/common';
import { loadConfig } from '@tq/config';
import {
  ArtifactStore,
  DatasetStore,
  JobInputStore,
  ModelRegistry,
  StoredBytes,
  VersionMetaCache,
  blobStoreFromConfig,
} from '@tq/storage';

/**
 * The blob store the configuration names (BLOB_STORE: the ARTIFACT_DIR folder, or S3), checked at
 * start-up: a missing bucket or denied access stops the process with a BlobStoreConfigError naming
 * the setting to fix, instead of failing the first job.
 */
async function checkedArtifactStore(): Promise<ArtifactStore> {
  const blobs = blobStoreFromConfig(loadConfig());
  await blobs.check();
  new Logger('Storage').log(`artifacts in ${blobs.kind === 's3' ? 'S3' : 'a local folder'}: ${blobs.location}`);
  return new ArtifactStore(blobs);
}

/** Releases the store's sockets (S3) when the app shuts down. */
class BlobStoreCloser implements OnApplicationShutdown {
  constructor(@Inject(ArtifactStore) private readonly store: ArtifactStore) {}
  onApplicationShutdown(): void {
    this.store.blobs.close();
  }
}

/** The storage libs (plain classes) as Nest providers, over one blob store. */
@Global()
@Module({
  providers: [
    { provide: ArtifactStore, useFactory: checkedArtifactStore },
    {
      provide: ModelRegistry,
      // With QueueModule (API, worker): version metadata cached, invalidated over Redis pub/sub.
      useFactory: (store: ArtifactStore, metas?: VersionMetaCache) => new ModelRegistry(store, metas),
      inject: [ArtifactStore, { token: VersionMetaCache, optional: true }],
    },
    { provide: DatasetStore, useFactory: (store: ArtifactStore) => new DatasetStore(store), inject: [ArtifactStore] },
    { provide: JobInputStore, useFactory: (store: ArtifactStore) => new JobInputStore(store), inject: [ArtifactStore] },
    {
      provide: StoredBytes,
      useFactory: (store: ArtifactStore) => new StoredBytes(store.blobs, loadConfig().QUOTA_CACHE_SECONDS * 1000),
      inject: [ArtifactStore],
    },
    BlobStoreCloser,
  ],
  exports: [ArtifactStore, ModelRegistry, DatasetStore, JobInputStore, StoredBytes],
})
export class StorageModule {}
