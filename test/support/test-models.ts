import type * as tf from '@tensorflow/tfjs';
import { DEFAULT_TENANT, type ModelVersionMeta } from '@tq/contracts';
import { ArtifactStore, ModelRegistry, modelSaveHandler } from '@tq/storage';
import type { TestSystem } from './system';

/**
 * Registers `model` (inputs [features], classes a, b, c) as a new version of `name` in the
 * system's default tenant, straight through the registry, as a trained version would be.
 */
export async function registerTestModel(
  system: TestSystem,
  name: string,
  model: tf.LayersModel,
  features: number,
): Promise<{ registry: ModelRegistry; meta: ModelVersionMeta }> {
  const registry = new ModelRegistry(new ArtifactStore(system.artifactDir).forTenant(DEFAULT_TENANT));
  const meta = await registry.register(
    name,
    {
      inputShape: [features],
      featureCount: features,
      classes: ['a', 'b', 'c'],
      lineage: { kind: 'trained' },
      weightDtype: 'float32',
    },
    async (out) => {
      await model.save(modelSaveHandler(out));
    },
  );
  return { registry, meta };
}
