import type { InferenceEngine } from '@tq/ml';
import type { ArtifactStore, DatasetStore, JobInputStore, ModelRegistry } from '@tq/storage';

/** The stores a job body may be given (the processor's root ones); each has a view scoped to one tenant. */
export interface TenantStores {
  registry?: ModelRegistry | undefined;
  datasets?: DatasetStore | undefined;
  store?: ArtifactStore | undefined;
  inputs?: JobInputStore | undefined;
  engine?: InferenceEngine | undefined;
}

/**
 * A processor's stores seen by the job's tenant (its envelope's meta.tenant), to spread over the
 * job's deps: model refs, dataset ids, outputs, inputs and checkpoints resolve under
 * tenants/<tenant>/, so a job cannot reach another tenant's objects whatever its request names,
 * and lineage stays within the tenant. Done here, at the worker's edge, so the job bodies
 * (libs/jobs, libs/paramserver) stay unaware of tenants.
 */
export function storesFor<S extends TenantStores>(stores: S, tenant: string): S {
  const scoped: TenantStores = {
    ...(stores.registry ? { registry: stores.registry.forTenant(tenant) } : {}),
    ...(stores.datasets ? { datasets: stores.datasets.forTenant(tenant) } : {}),
    ...(stores.store ? { store: stores.store.forTenant(tenant) } : {}),
    ...(stores.inputs ? { inputs: stores.inputs.forTenant(tenant) } : {}),
    ...(stores.engine ? { engine: stores.engine.forTenant(tenant) } : {}),
  };
  return { ...stores, ...scoped };
}
