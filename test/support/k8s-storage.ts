import {
  componentOf,
  environmentOf,
  nameOf,
  portNumber,
  probePath,
  selects,
  WORKLOAD_KINDS,
  type Environment,
  type K8sObject,
} from './k8s-objects';

/**
 * The storage checks of the manifests (issue 12): artifacts live in an S3 blob store, so no app pod shares
 * a volume; the app's keys come from a Secret; and where the manifests run MinIO themselves, the app's
 * endpoint, bucket and keys are MinIO's, and a Job creates that bucket.
 */

/** The stores that keep their own data on a claim; nothing else may mount one. */
const DATA_STORES = ['minio', 'redis'];
const KEYS = ['S3_ACCESS_KEY_ID', 'S3_SECRET_ACCESS_KEY'] as const;
/** A MinIO release tag (RELEASE.<UTC time>), of the image on any registry (minio/minio, quay.io/minio/minio). */
const MINIO_RELEASE = /(^|\/)minio\/minio:RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ$/;

export interface StorageOptions {
  /** The base leaves the object store to the overlays: the Secret with the S3 keys is theirs. */
  externalS3?: boolean;
}

const podSpecOf = (w: K8sObject): K8sObject => w.spec?.template?.spec ?? {};
const firstContainer = (w: K8sObject): K8sObject => (podSpecOf(w).containers ?? [])[0] ?? {};
/** Whether a's variable `key` and b's `bKey` come from the same place (the same ConfigMap or Secret key). */
function sameSource(a: Environment, b: Environment, key: string, bKey = key): boolean {
  const x = a.sources[key];
  const y = b.sources[bKey];
  if (!x || !y) return x === y; // both unset (the base has no S3_ENDPOINT) is the same
  return x.from === y.from && x.name === y.name && (x.key ?? key) === (y.key ?? bKey);
}

export function storageProblems(objects: K8sObject[], opts: StorageOptions): string[] {
  const problems: string[] = [];
  const of = (kind: string) => objects.filter((o) => o.kind === kind);
  const workloads = objects.filter((o) => WORKLOAD_KINDS.includes(o.kind));
  const missingOk = (kind: string) => opts.externalS3 === true && kind === 'Secret';
  const envOf = (w: K8sObject) => environmentOf(firstContainer(w), objects, nameOf(w), [], missingOk);

  // No pod shares a volume: only the data stores keep a claim, each its own.
  for (const w of workloads) {
    const claims = [
      ...((podSpecOf(w).volumes ?? []) as K8sObject[])
        .filter((v) => v.persistentVolumeClaim)
        .map((v) => v.persistentVolumeClaim.claimName),
      ...((w.spec?.volumeClaimTemplates ?? []) as K8sObject[]).map((t) => t.metadata?.name),
    ];
    if (claims.length > 0 && !DATA_STORES.includes(componentOf(w) ?? ''))
      problems.push(
        `${nameOf(w)}: mounts claim ${claims.join(', ')}: artifacts go to S3, only MinIO and Redis keep a volume`,
      );
  }

  // Every app container: the S3 store, its keys from a Secret, ARTIFACT_DIR as the pod's own scratch.
  const apps = of('Deployment').filter((d) => ['api', 'worker'].includes(componentOf(d) ?? ''));
  const appEnvs = apps.map(envOf);
  apps.forEach((app, i) => {
    const where = nameOf(app);
    const { env, sources } = appEnvs[i] as Environment;
    if (env.BLOB_STORE !== 's3') problems.push(`${where}: BLOB_STORE is ${env.BLOB_STORE}, not s3`);
    if (!env.S3_BUCKET) problems.push(`${where}: S3_BUCKET is set nowhere`);
    for (const key of KEYS)
      if (sources[key]?.from !== 'Secret')
        problems.push(`${where}: ${key} must come from a Secret, not ${sources[key]?.from ?? 'nowhere'}`);
    const mount = ((firstContainer(app).volumeMounts ?? []) as K8sObject[]).find(
      (m) => m.mountPath === env.ARTIFACT_DIR,
    );
    const volume = ((podSpecOf(app).volumes ?? []) as K8sObject[]).find((v) => v.name === mount?.name);
    if (!volume?.emptyDir) problems.push(`${where}: ARTIFACT_DIR must be an emptyDir (scratch; the root is read-only)`);
    // One store for all: the same bucket, prefix, endpoint and keys in every pod.
    const first = appEnvs[0] as Environment;
    for (const key of ['S3_BUCKET', 'S3_PREFIX', 'S3_ENDPOINT', ...KEYS])
      if (env[key] !== first.env[key] || !sameSource(appEnvs[i] as Environment, first, key))
        problems.push(`${where}: ${key} differs from ${nameOf(apps[0] as K8sObject)}'s`);
  });
  for (const cm of of('ConfigMap'))
    for (const key of KEYS)
      if (cm.data?.[key] !== undefined) problems.push(`${nameOf(cm)}: holds ${key}, a credential`);

  const app = appEnvs[0];
  for (const minio of workloads.filter((w) => componentOf(w) === 'minio'))
    if (app) problems.push(...minioProblems(minio, app, objects, envOf));
  return problems;
}

/** A MinIO of the manifests: pinned, probed, on a claim, reached by the apps' endpoint, with the apps' keys and bucket. */
function minioProblems(
  minio: K8sObject,
  app: Environment,
  objects: K8sObject[],
  envOf: (w: K8sObject) => Environment,
): string[] {
  const problems: string[] = [];
  const where = nameOf(minio);
  const container = firstContainer(minio);
  if (!MINIO_RELEASE.test(container.image ?? ''))
    problems.push(`${where}: image ${container.image} is no pinned RELEASE tag`);

  const ready = container.readinessProbe;
  const live = container.livenessProbe;
  if (probePath(ready) !== '/minio/health/ready') problems.push(`${where}: readiness must be GET /minio/health/ready`);
  if (probePath(live) !== '/minio/health/live') problems.push(`${where}: liveness must be GET /minio/health/live`);
  const s3Port = portNumber(container, ready?.httpGet?.port);
  if (s3Port === undefined || portNumber(container, live?.httpGet?.port) !== s3Port)
    problems.push(`${where}: both probes must reach a port of the container`);

  // Its data folder (`server <dir>`) on a claim: on the root or an emptyDir, a restart loses every artifact.
  const args = (container.args ?? []) as string[];
  const dataDir = args[args.indexOf('server') + 1];
  const mount = ((container.volumeMounts ?? []) as K8sObject[]).find((m) => m.mountPath === dataDir);
  const claimed = ((minio.spec?.volumeClaimTemplates ?? []) as K8sObject[]).some(
    (t) => t.metadata?.name === mount?.name,
  );
  if (!claimed) problems.push(`${where}: its data folder ${dataDir} is not on a volumeClaimTemplate`);

  // The apps' keys are valid on it: they are its root user.
  const own = envOf(minio);
  const pairs = [
    ['MINIO_ROOT_USER', 'S3_ACCESS_KEY_ID'],
    ['MINIO_ROOT_PASSWORD', 'S3_SECRET_ACCESS_KEY'],
  ] as const;
  for (const [mine, theirs] of pairs)
    if (own.env[mine] === undefined || own.env[mine] !== app.env[theirs] || !sameSource(own, app, mine, theirs))
      problems.push(`${where}: ${mine} must be the apps' ${theirs} (the same Secret key)`);

  // The apps' endpoint names a Service that reaches this MinIO's S3 port.
  const endpoint = URL.canParse(app.env.S3_ENDPOINT ?? '') ? new URL(app.env.S3_ENDPOINT as string) : undefined;
  const port = Number(endpoint?.port || (endpoint?.protocol === 'https:' ? 443 : 80));
  const [host, namespace] = (endpoint?.hostname ?? '').split('.');
  const service = objects.find(
    (o) =>
      o.kind === 'Service' &&
      o.metadata?.name === host &&
      (namespace === undefined || namespace === o.metadata?.namespace) &&
      selects({ matchLabels: o.spec?.selector }, minio.spec?.template?.metadata?.labels) &&
      ((o.spec?.ports ?? []) as K8sObject[]).some(
        (p) => p.port === port && portNumber(container, p.targetPort ?? p.port) === s3Port,
      ),
  );
  if (!service) problems.push(`${where}: S3_ENDPOINT ${app.env.S3_ENDPOINT} names no Service on its S3 port`);
  if (app.env.S3_FORCE_PATH_STYLE !== 'true') problems.push(`${where}: MinIO needs S3_FORCE_PATH_STYLE=true`);

  // A Job creates the apps' bucket at the apps' endpoint with the apps' keys (from the same sources).
  const creates = objects
    .filter((o) => o.kind === 'Job')
    .some((job) => {
      const script = [...(firstContainer(job).command ?? []), ...(firstContainer(job).args ?? [])].join(' ');
      const env = envOf(job);
      const uses = (v: string) => script.includes(`$${v}`) || script.includes(`\${${v}}`);
      return (
        /\bmc\b.*\bmb --ignore-existing\b/.test(script) &&
        ['S3_ENDPOINT', 'S3_BUCKET', ...KEYS].every(
          (v) => uses(v) && env.env[v] !== undefined && env.env[v] === app.env[v] && sameSource(env, app, v),
        )
      );
    });
  if (!creates)
    problems.push(`${where}: no Job runs mc mb --ignore-existing with the apps' S3_ENDPOINT, S3_BUCKET and keys`);
  return problems;
}
