import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { DEPLOYED_QUEUES } from '@tq/contracts';
import {
  crossCheckProblems,
  renderKustomization,
  schemaProblems,
  selectorsOf,
  type K8sObject,
} from './support/k8s-manifests';
import { decodeSecret, environmentOf } from './support/k8s-objects';
import { TestSystem } from './support/system';
import { freePort } from '../tools/free-port';

/**
 * deploy/k8s, checked without a cluster (none runs on the build machines): rendered by `kubectl kustomize`,
 * every object validated against its Kubernetes or KEDA schema (kubernetes-models), then cross-checked
 * against the app itself: its config schema, its queues, and the series a running API's /metrics serves.
 * The last group breaks one thing at a time in a copy of the rendered objects and expects a complaint.
 */

const ROOT = findRoot(__dirname);
const K8S = join(ROOT, 'deploy', 'k8s');

function findRoot(from: string): string {
  for (let dir = from; dir !== dirname(dir); dir = dirname(dir))
    if (existsSync(join(dir, 'deploy', 'k8s')) && existsSync(join(dir, 'package.json'))) return dir;
  throw new Error(`no deploy/k8s above ${from}`);
}

const find = (objects: K8sObject[], kind: string, name: string): K8sObject => {
  const found = objects.find((o) => o.kind === kind && o.metadata?.name === name);
  assert.ok(found, `${kind}/${name} in the manifests`);
  return found;
};

/** Sets a variable of a Deployment's container to a literal value, in place of its valueFrom. */
function setLiteralEnv(objects: K8sObject[], deployment: string, name: string, value: string): void {
  const env = find(objects, 'Deployment', deployment).spec.template.spec.containers[0].env as K8sObject[];
  const entry = env.find((e) => e.name === name)!;
  delete entry.valueFrom;
  entry.value = value;
}

/** One breakage each, applied to a copy of the small overlay's objects; [what, which check must notice, how]. */
const BREAKAGES: Array<[string, 'schema' | 'cross', (objects: K8sObject[]) => void]> = [
  [
    'a port written as a string',
    'schema',
    (o) => {
      find(o, 'Deployment', 'tq-api').spec.template.spec.containers[0].ports[0].containerPort = '3000';
    },
  ],
  [
    'a Job whose backoffLimit is a string (batch/v1 is validated too)',
    'schema',
    (o) => {
      find(o, 'Job', 'tq-minio-make-bucket').spec.backoffLimit = '6';
    },
  ],
  [
    'a ScaledObject without triggers',
    'schema',
    (o) => {
      delete find(o, 'ScaledObject', 'tq-worker-infer').spec.triggers;
    },
  ],
  [
    'a kind the validator has no schema for',
    'schema',
    (o) => {
      o.push({ apiVersion: 'monitoring.coreos.com/v1', kind: 'ServiceMonitor', metadata: { name: 'x' } });
    },
  ],
  [
    'a scaleTargetRef with a typo',
    'cross',
    (o) => {
      find(o, 'ScaledObject', 'tq-worker-train').spec.scaleTargetRef.name = 'tq-worker-trian';
    },
  ],
  [
    'a queue without workers (datasets)',
    'cross',
    (o) => {
      o.splice(o.indexOf(find(o, 'Deployment', 'tq-worker-datasets')), 1);
      o.splice(o.indexOf(find(o, 'ScaledObject', 'tq-worker-datasets')), 1);
    },
  ],
  [
    'a metric name the API does not serve',
    'cross',
    (o) => {
      const meta = find(o, 'ScaledObject', 'tq-worker-compress').spec.triggers[0].metadata;
      meta.query = meta.query.replace('tq_queue_depth', 'tq_queue_length');
    },
  ],
  [
    'a trigger reading another queue than its Deployment serves',
    'cross',
    (o) => {
      const env = find(o, 'Deployment', 'tq-worker-infer').spec.template.spec.containers[0].env;
      env.find((e: K8sObject) => e.name === 'WORKER_QUEUES').value = 'train';
    },
  ],
  [
    'a config value the app would refuse',
    'cross',
    (o) => {
      find(o, 'ConfigMap', 'tq-config').data.MAX_UPLOAD_BYTES = 'lots';
    },
  ],
  [
    'a config key the app does not read',
    'cross',
    (o) => {
      find(o, 'ConfigMap', 'tq-config').data.MAX_UPLOADS_BYTES = '1';
    },
  ],
  [
    'a required config key missing',
    'cross',
    (o) => {
      delete find(o, 'ConfigMap', 'tq-config').data.QUEUE_PREFIX;
    },
  ],
  [
    'a serve replica announcing a Service instead of its pod (the API balances over pods itself)',
    'cross',
    (o) => {
      const env = find(o, 'Deployment', 'tq-serve').spec.template.spec.containers[0].env;
      env.find((e: K8sObject) => e.name === 'SERVE_ADVERTISE_URL').value = 'http://tq-serve:3100';
    },
  ],
  [
    'a serve replica probed on another port than SERVE_PORT',
    'cross',
    (o) => {
      find(o, 'Deployment', 'tq-serve').spec.template.spec.containers[0].livenessProbe.httpGet.port = 9464;
    },
  ],
  [
    "a serve replica's onnxruntime sized to the node's cores (ORT_INTRA_OP_THREADS 0)",
    'cross',
    (o) => setLiteralEnv(o, 'tq-serve', 'ORT_INTRA_OP_THREADS', '0'),
  ],
  [
    "an infer worker's onnxruntime threads set to 8 under a CPU limit of 2",
    'cross',
    (o) => setLiteralEnv(o, 'tq-worker-infer', 'ORT_INTRA_OP_THREADS', '8'),
  ],
  [
    'an HPA whose minReplicas is a string (autoscaling/v2 is validated too)',
    'schema',
    (o) => {
      find(o, 'HorizontalPodAutoscaler', 'tq-serve').spec.minReplicas = '1';
    },
  ],
  [
    'an API liveness probe that reads Redis',
    'cross',
    (o) => {
      find(o, 'Deployment', 'tq-api').spec.template.spec.containers[0].livenessProbe.httpGet.path = '/health';
    },
  ],
  [
    'an API liveness probe on PORT (which needs a key there)',
    'cross',
    (o) => {
      find(o, 'Deployment', 'tq-api').spec.template.spec.containers[0].livenessProbe.httpGet.port = 'http';
    },
  ],
  [
    'Prometheus pointed at the API port (which needs a key)',
    'cross',
    (o) => {
      find(o, 'Deployment', 'tq-api').spec.template.metadata.annotations['prometheus.io/port'] = '3000';
    },
  ],
  [
    'a worker that keeps ARTIFACT_DIR on a shared claim',
    'cross',
    (o) => {
      const spec = find(o, 'Deployment', 'tq-worker-train').spec.template.spec;
      spec.volumes.find((v: K8sObject) => v.name === 'scratch').persistentVolumeClaim = { claimName: 'shared' };
    },
  ],
  [
    'BLOB_STORE local',
    'cross',
    (o) => {
      find(o, 'ConfigMap', 'tq-config').data.BLOB_STORE = 'local';
    },
  ],
  [
    'an S3 secret key written as a plain value',
    'cross',
    (o) => {
      const env = find(o, 'Deployment', 'tq-api').spec.template.spec.containers[0].env;
      const key = env.find((e: K8sObject) => e.name === 'S3_SECRET_ACCESS_KEY');
      delete key.valueFrom;
      key.value = 'change-me-placeholder-not-a-secret';
    },
  ],
  [
    'S3_ENDPOINT naming no Service',
    'cross',
    (o) => {
      find(o, 'ConfigMap', 'tq-config').data.S3_ENDPOINT = 'http://minio:9000';
    },
  ],
  [
    'the MinIO Service on another port than S3_ENDPOINT',
    'cross',
    (o) => {
      find(o, 'Service', 'tq-minio').spec.ports[0].port = 9001;
    },
  ],
  [
    'virtual-host URLs against MinIO',
    'cross',
    (o) => {
      find(o, 'ConfigMap', 'tq-config').data.S3_FORCE_PATH_STYLE = 'false';
    },
  ],
  [
    'the bucket Job creating another bucket',
    'cross',
    (o) => {
      const env = find(o, 'Job', 'tq-minio-make-bucket').spec.template.spec.containers[0].env;
      const bucket = env.find((e: K8sObject) => e.name === 'S3_BUCKET');
      delete bucket.valueFrom;
      bucket.value = 'artifacts';
    },
  ],
  [
    'the bucket Job without --ignore-existing',
    'cross',
    (o) => {
      const container = find(o, 'Job', 'tq-minio-make-bucket').spec.template.spec.containers[0];
      container.args = container.args.map((a: string) => a.replace('mb --ignore-existing', 'mb'));
    },
  ],
  [
    "MinIO with root keys other than the apps' S3 keys",
    'cross',
    (o) => {
      const env = find(o, 'StatefulSet', 'tq-minio').spec.template.spec.containers[0].env;
      env.find((e: K8sObject) => e.name === 'MINIO_ROOT_PASSWORD').valueFrom.secretKeyRef.key = 'S3_ACCESS_KEY_ID';
    },
  ],
  [
    'no Secret with the S3 keys',
    'cross',
    (o) => {
      o.splice(
        o.findIndex((x) => x.kind === 'Secret' && x.metadata.name.startsWith('tq-s3-')),
        1,
      );
    },
  ],
  [
    'no Job that makes the bucket',
    'cross',
    (o) => {
      o.splice(o.indexOf(find(o, 'Job', 'tq-minio-make-bucket')), 1);
    },
  ],
  [
    'MinIO on an unpinned image',
    'cross',
    (o) => {
      find(o, 'StatefulSet', 'tq-minio').spec.template.spec.containers[0].image = 'minio/minio:latest';
    },
  ],
  [
    'MinIO ready on its liveness path',
    'cross',
    (o) => {
      find(o, 'StatefulSet', 'tq-minio').spec.template.spec.containers[0].readinessProbe.httpGet.path =
        '/minio/health/live';
    },
  ],
  [
    'MinIO data on an emptyDir',
    'cross',
    (o) => {
      const minio = find(o, 'StatefulSet', 'tq-minio');
      delete minio.spec.volumeClaimTemplates;
      minio.spec.template.spec.volumes.push({ name: 'data', emptyDir: {} });
    },
  ],
  [
    'Redis without noeviction',
    'cross',
    (o) => {
      const args: string[] = find(o, 'StatefulSet', 'tq-redis').spec.template.spec.containers[0].args;
      args[args.indexOf('noeviction')] = 'allkeys-lru';
    },
  ],
  [
    'a container running as root without limits',
    'cross',
    (o) => {
      const spec = find(o, 'Deployment', 'tq-worker-aggregate').spec.template.spec;
      delete spec.securityContext.runAsNonRoot;
      delete spec.containers[0].resources.limits;
    },
  ],
  [
    'two Deployments selecting the same pods',
    'cross',
    (o) => {
      delete find(o, 'Deployment', 'tq-worker-compress').spec.selector.matchLabels['tensorqueue.io/queue'];
    },
  ],
  [
    'a threshold that is not the jobs a pod runs at once',
    'cross',
    (o) => {
      find(o, 'ScaledObject', 'tq-worker-infer').spec.triggers[0].metadata.threshold = '5';
    },
  ],
  [
    'a trigger that reads a missing figure as 0',
    'cross',
    (o) => {
      delete find(o, 'ScaledObject', 'tq-worker-train-shard').spec.triggers[0].metadata.ignoreNullValues;
    },
  ],
  [
    'REDIS_URL naming no Service',
    'cross',
    (o) => {
      const secret = o.find((x) => x.kind === 'Secret');
      secret!.data.REDIS_URL = Buffer.from('redis://tq-redis-master:6379').toString('base64');
    },
  ],
];

describe('Kubernetes manifests (deploy/k8s)', () => {
  let served: string;
  let apiLivenessStatus: number;
  let mainPortMetricsStatus: number;
  let base: K8sObject[];
  let small: K8sObject[];
  before(async () => {
    base = renderKustomization(join(K8S, 'base'));
    small = renderKustomization(join(K8S, 'overlays', 'small'));
    // The series the triggers read must be the ones the API serves: ask a real one (no jobs needed, every
    // queue has its tq_queue_depth and tq_jobs series from the first scrape).
    // Asked as Prometheus and the kubelet do: on API_METRICS_PORT, without a key.
    const metricsPort = await freePort();
    const system = await TestSystem.start({ workers: 0, env: { API_METRICS_PORT: String(metricsPort) } });
    try {
      const unauthenticated = (path: string) => fetch(`http://127.0.0.1:${metricsPort}${path}`);
      served = await (await unauthenticated('/metrics')).text();
      const liveness = find(small, 'Deployment', 'tq-api').spec.template.spec.containers[0].livenessProbe;
      apiLivenessStatus = (await unauthenticated(liveness.httpGet.path)).status;
      mainPortMetricsStatus = (await fetch(`${system.url}/metrics`)).status;
    } finally {
      await system.stop();
    }
  });

  it('renders: the base and the small overlay, with what each must hold', () => {
    const kinds = (objects: K8sObject[]) => objects.map((o) => `${o.kind}/${o.metadata?.name}`).sort();
    const workers = DEPLOYED_QUEUES.map((q) => `tq-worker-${q}`);
    for (const name of [
      'Deployment/tq-api',
      'Service/tq-api',
      'ConfigMap/tq-config',
      'Deployment/tq-serve',
      'HorizontalPodAutoscaler/tq-serve',
    ])
      assert.ok(kinds(base).includes(name), name);
    // Generated: its name ends in a hash of its content, and kustomize rewrites the references.
    assert.ok(kinds(base).some((k) => k.startsWith('Secret/tq-secrets-')));
    for (const w of workers)
      assert.ok(kinds(base).includes(`Deployment/${w}`) && kinds(base).includes(`ScaledObject/${w}`), w);
    assert.ok(!kinds(base).some((k) => k.includes('redis')), 'the base has no Redis: the overlay chooses');
    assert.ok(!kinds(base).some((k) => k.includes('minio') || k.startsWith('Secret/tq-s3')), 'nor a store or its keys');
    assert.ok(kinds(small).includes('StatefulSet/tq-redis') && kinds(small).includes('Namespace/tensorqueue'));
    for (const name of ['StatefulSet/tq-minio', 'Service/tq-minio', 'Job/tq-minio-make-bucket'])
      assert.ok(kinds(small).includes(name), name);
    assert.ok(kinds(small).some((k) => k.startsWith('Secret/tq-s3-')));
    for (const objects of [base, small]) assert.ok(!kinds(objects).some((k) => k.startsWith('PersistentVolumeClaim/')));
    assert.ok(small.filter((o) => o.kind !== 'Namespace').every((o) => o.metadata.namespace === 'tensorqueue'));
  });

  it('every object passes its Kubernetes or KEDA schema', () => {
    assert.deepEqual(schemaProblems(base), []);
    assert.deepEqual(schemaProblems(small), []);
  });

  it('cross-checks: config, queues, triggers against the served /metrics, probes, security, Redis, S3', () => {
    assert.deepEqual(crossCheckProblems(base, { servedMetrics: served, externalRedis: true, externalS3: true }), []);
    assert.deepEqual(crossCheckProblems(small, { servedMetrics: served }), []);
  });

  it('artifacts in S3: no app pod mounts a claim; each gets BLOB_STORE=s3 and its keys from a Secret', () => {
    const claimants = (objects: K8sObject[]) =>
      objects
        .filter((o) => ['Deployment', 'StatefulSet', 'Job'].includes(o.kind))
        .filter(
          (w) =>
            w.spec.volumeClaimTemplates?.length > 0 ||
            (w.spec.template.spec.volumes ?? []).some((v: K8sObject) => v.persistentVolumeClaim),
        )
        .map((w) => `${w.kind}/${w.metadata.name}`)
        .sort();
    assert.deepEqual(claimants(base), []);
    assert.deepEqual(claimants(small), ['StatefulSet/tq-minio', 'StatefulSet/tq-redis']);

    const s3Secret = small.find((o) => o.kind === 'Secret' && o.metadata.name.startsWith('tq-s3-'))!;
    for (const [objects, secretName] of [
      [base, 'tq-s3'],
      [small, s3Secret.metadata.name],
    ] as const) {
      const apps = objects.filter((o) => o.kind === 'Deployment');
      assert.equal(apps.length, 2 + DEPLOYED_QUEUES.length, 'the API, the serve replicas and a worker per queue');
      for (const app of apps) {
        const container = app.spec.template.spec.containers[0];
        const { env, sources } = environmentOf(container, objects, app.metadata.name, []);
        assert.equal(env.BLOB_STORE, 's3', app.metadata.name);
        assert.equal(env.S3_BUCKET, 'tensorqueue', app.metadata.name);
        for (const key of ['S3_ACCESS_KEY_ID', 'S3_SECRET_ACCESS_KEY'])
          assert.deepEqual(sources[key], { from: 'Secret', name: secretName, key }, `${app.metadata.name} ${key}`);
        const scratch = app.spec.template.spec.volumes.find((v: K8sObject) => v.name === 'scratch');
        assert.ok(scratch.emptyDir, app.metadata.name);
        assert.ok(
          container.volumeMounts.some((m: K8sObject) => m.name === 'scratch' && m.mountPath === env.ARTIFACT_DIR),
        );
      }
    }
    assert.ok(
      !find(base, 'ConfigMap', 'tq-config').data.S3_ENDPOINT,
      'the base names no endpoint: AWS unless an overlay says',
    );
    // No key is committed in the base; the small overlay's Secret has both (placeholders, docs/kubernetes.md).
    for (const secret of base.filter((o) => o.kind === 'Secret'))
      assert.ok(!Object.keys(decodeSecret(secret)).some((k) => k.startsWith('S3_')), secret.metadata.name);
    assert.deepEqual(Object.keys(decodeSecret(s3Secret)).sort(), ['S3_ACCESS_KEY_ID', 'S3_SECRET_ACCESS_KEY']);
  });

  it('small: the apps reach MinIO at its Service, with its keys, and a Job makes their bucket there', () => {
    const config = find(small, 'ConfigMap', 'tq-config').data;
    assert.equal(config.S3_ENDPOINT, 'http://tq-minio:9000');
    assert.equal(config.S3_FORCE_PATH_STYLE, 'true');
    const service = find(small, 'Service', 'tq-minio');
    assert.deepEqual(service.spec.ports, [{ name: 's3', port: 9000, targetPort: 's3' }]);
    const minio = find(small, 'StatefulSet', 'tq-minio').spec.template.spec.containers[0];
    assert.match(minio.image, /^minio\/minio:RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ$/);
    assert.ok(minio.ports.some((p: K8sObject) => p.name === 's3' && p.containerPort === 9000));
    assert.equal(minio.livenessProbe.httpGet.path, '/minio/health/live');
    assert.equal(minio.readinessProbe.httpGet.path, '/minio/health/ready');
    const job = find(small, 'Job', 'tq-minio-make-bucket').spec.template.spec.containers[0];
    assert.match(job.image, /^minio\/mc:RELEASE\./);
    const { env } = environmentOf(job, small, 'job', []);
    assert.equal(env.S3_ENDPOINT, config.S3_ENDPOINT);
    assert.equal(env.S3_BUCKET, config.S3_BUCKET);
    assert.match(job.args.join('\n'), /mc --config-dir \S+ mb --ignore-existing "tq\/\$S3_BUCKET"/);
    assert.deepEqual(crossCheckProblems(small, { servedMetrics: served }), []);
  });

  it("the API's liveness path answers 200 on a running API (it is not a path that reads Redis: checked above)", () => {
    assert.equal(apiLivenessStatus, 200);
  });

  it("the API's /metrics on PORT needs a key: Prometheus scrapes API_METRICS_PORT, the annotated port", () => {
    assert.equal(mainPortMetricsStatus, 401);
    const pod = find(small, 'Deployment', 'tq-api').spec.template;
    assert.equal(pod.metadata.annotations['prometheus.io/port'], '9465');
    const env = pod.spec.containers[0].env as K8sObject[];
    assert.equal(env.find((e) => e.name === 'API_METRICS_PORT')?.value, '9465');
    // The Service exposes only the API port: the unauthenticated listener stays on the pod network.
    const service = find(small, 'Service', 'tq-api');
    assert.deepEqual(
      service.spec.ports.map((p: K8sObject) => p.targetPort),
      ['http'],
    );
  });

  it('TQ_ADMIN_KEY comes from the Secret tq-secrets, as an optional key (unset: the first-start key)', () => {
    const env = find(small, 'Deployment', 'tq-api').spec.template.spec.containers[0].env as K8sObject[];
    const ref = env.find((e) => e.name === 'TQ_ADMIN_KEY')?.valueFrom?.secretKeyRef;
    assert.equal(ref?.key, 'TQ_ADMIN_KEY');
    assert.ok(String(ref?.name).startsWith('tq-secrets'), ref?.name);
    assert.equal(ref?.optional, true);
  });

  it('every overlay in deploy/k8s/overlays renders and passes both checks (a new one is covered as it lands)', () => {
    const overlays = readdirSync(join(K8S, 'overlays'), { withFileTypes: true }).filter((d) => d.isDirectory());
    assert.ok(overlays.length > 0);
    for (const overlay of overlays) {
      const objects = renderKustomization(join(K8S, 'overlays', overlay.name));
      assert.deepEqual(schemaProblems(objects), [], overlay.name);
      assert.deepEqual(crossCheckProblems(objects, { servedMetrics: served }), [], overlay.name);
    }
  });

  it('the overlay patches where KEDA asks Prometheus, in every ScaledObject', () => {
    const addresses = (objects: K8sObject[]) =>
      new Set(objects.filter((o) => o.kind === 'ScaledObject').map((o) => o.spec.triggers[0].metadata.serverAddress));
    assert.deepEqual([...addresses(small)], ['http://prometheus-server.monitoring.svc.cluster.local:80']);
    assert.notDeepEqual([...addresses(base)], [...addresses(small)]);
  });

  it("each trigger's query gives the pods its queues need: promtool evaluates it on series of two API replicas", () => {
    // Per queue q (index i among every queue a query names): i + 1 waiting-ish jobs (tq_queue_depth) and i
    // active ones, reported the same by both API replicas; other states are noise the query must not add.
    // Replicas wanted: the sum of 2i + 1 over the queues a query names (infer's also counts infer-shard).
    const queries = small
      .filter((o) => o.kind === 'ScaledObject')
      .map((so) => so.spec.triggers[0].metadata.query as string);
    const queues = [...new Set(queries.flatMap((q) => selectorsOf(q).map((s) => s.labels.queue ?? '')))];
    const series: Array<{ series: string; values: string }> = [];
    queues.forEach((queue, i) => {
      for (const instance of ['api-a', 'api-b']) {
        series.push({ series: `tq_queue_depth{queue="${queue}",instance="${instance}"}`, values: String(i + 1) });
        for (const [state, n] of [
          ['active', i],
          ['waiting', 50],
          ['completed', 70],
        ] as const)
          series.push({
            series: `tq_jobs{queue="${queue}",state="${state}",instance="${instance}"}`,
            values: String(n),
          });
      }
    });
    const tests = queries.map((query) => {
      const named = [...new Set(selectorsOf(query).map((s) => s.labels.queue ?? ''))];
      const value = named.reduce((sum, q) => sum + 2 * queues.indexOf(q) + 1, 0);
      return { expr: query, eval_time: '0m', exp_samples: [{ labels: '{}', value }] };
    });
    assert.ok(
      queries.some((q) => /infer-shard/.test(q)),
      'the infer workers scale on their shards too',
    );
    assert.equal(tests.length, DEPLOYED_QUEUES.length);
    const dir = mkdtempSync(join(tmpdir(), 'tq-promtool-'));
    try {
      const file = join(dir, 'queries.test.yml');
      writeFileSync(
        file,
        stringify({ rule_files: [], tests: [{ interval: '1m', input_series: series, promql_expr_test: tests }] }),
      );
      const run = spawnSync('promtool', ['test', 'rules', file], { encoding: 'utf8' });
      if (run.error) throw run.error;
      assert.equal(run.status, 0, `${run.stdout}${run.stderr}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('a broken manifest fails the checks', () => {
    for (const [what, check, breakIt] of BREAKAGES)
      it(what, () => {
        const problemsOf = (objects: K8sObject[]) =>
          check === 'schema' ? schemaProblems(objects) : crossCheckProblems(objects, { servedMetrics: served });
        const before = problemsOf(small);
        const objects = structuredClone(small);
        breakIt(objects);
        const problems = problemsOf(objects);
        assert.ok(
          problems.some((p) => !before.includes(p)),
          `no new problem found after: ${what}`,
        );
      });
  });
});
