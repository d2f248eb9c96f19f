import { Global, Module } from '@nestjs/common';
import { loadConfig } from '@tq/config';
import { ArtifactStore, DatasetStore, JobInputStore, ModelRegistry } from '@tq/storage';

/** The storage libs (plain classes) as Nest providers, rooted at ARTIFACT_DIR. */
@Global()
@Module({
  providers: [
    { provide: ArtifactStore, useFactory: () => new ArtifactStore(loadConfig().ARTIFACT_DIR) },
    { provide: ModelRegistry, useFactory: (store: ArtifactStore) => new ModelRegistry(store), inject: [ArtifactStore] },
    { provide: DatasetStore, useFactory: (store: ArtifactStore) => new DatasetStore(store), inject: [ArtifactStore] },
    { provide: JobInputStore, useFactory: (store: ArtifactStore) => new JobInputStore(store), inject: [ArtifactStore] },
  ],
  exports: [ArtifactStore, ModelRegistry, DatasetStore, JobInputStore],
})
export class StorageModule {}
