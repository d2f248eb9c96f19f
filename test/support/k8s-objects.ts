/**
 * Readers of rendered Kubernetes objects shared by the manifest checks (k8s-manifests.ts, k8s-storage.ts):
 * fields are read defensively, since a broken manifest is what the checks look for.
 */

/** One rendered object. */
export type K8sObject = Record<string, any>;

export const nameOf = (o: K8sObject) => `${o.kind}/${o.metadata?.name}`;

export const componentOf = (o: K8sObject): string | undefined => o.metadata?.labels?.['app.kubernetes.io/component'];

/** The pod-creating kinds whose pod template is at spec.template. */
export const WORKLOAD_KINDS = ['Deployment', 'StatefulSet', 'DaemonSet', 'Job'];

export function decodeSecret(secret: K8sObject): Record<string, string> {
  const data = Object.fromEntries(
    Object.entries((secret.data ?? {}) as Record<string, string>).map(([k, v]) => [
      k,
      Buffer.from(v, 'base64').toString('utf8'),
    ]),
  );
  return { ...data, ...(secret.stringData as Record<string, string> | undefined) };
}

/**
 * Where a variable of a container's environment comes from: a literal, a key of a ConfigMap or
 * Secret, or one of the container's resources (resourceFieldRef).
 */
export interface EnvSource {
  from: 'value' | 'ConfigMap' | 'Secret' | 'resource';
  /** The ConfigMap's or Secret's name. */
  name?: string;
  /** The key in it (the variable's own name for envFrom); the resource ("limits.cpu") for a resource. */
  key?: string;
}

/** A CPU quantity in cores ("2", "1.5", "500m"); NaN for anything else. */
export function cpuCores(quantity: unknown): number {
  const m = /^(\d+(?:\.\d+)?)(m?)$/.exec(String(quantity));
  return m ? Number(m[1]) / (m[2] ? 1000 : 1) : NaN;
}

/**
 * A resourceFieldRef's value as the kubelet gives it: the container's CPU request or limit in units
 * of the divisor (default 1), rounded up. Only CPU is read here (what the manifests use);
 * undefined for anything else, or a container without that bound.
 */
function resourceValue(container: K8sObject, ref: K8sObject): string | undefined {
  const [bound, resource] = String(ref.resource).split('.');
  if ((bound !== 'limits' && bound !== 'requests') || resource !== 'cpu') return undefined;
  if (ref.containerName !== undefined && ref.containerName !== container.name) return undefined;
  const cores = cpuCores(container.resources?.[bound]?.cpu);
  const divisor = cpuCores(ref.divisor ?? '1');
  return Number.isFinite(cores) && divisor > 0 ? String(Math.ceil(cores / divisor)) : undefined;
}

export interface Environment {
  env: Record<string, string>;
  sources: Record<string, EnvSource>;
}

/**
 * A container's environment as the kubelet builds it: envFrom in order, then env (which wins), with
 * valueFrom's configMapKeyRef and secretKeyRef looked up in the rendered objects, and resourceFieldRef
 * in the container's CPU (resourceValue). A reference to an object or key that is not there is a
 * problem (the pod would not start), unless it is optional or `missingOk` says the manifests leave
 * that object to someone else (the base leaves the S3 Secret to the overlays).
 */
export function environmentOf(
  container: K8sObject,
  objects: K8sObject[],
  where: string,
  problems: string[],
  missingOk: (kind: string, name: string) => boolean = () => false,
): Environment {
  const env: Record<string, string> = {};
  const sources: Record<string, EnvSource> = {};
  const dataOf = (kind: 'ConfigMap' | 'Secret', name: unknown) => {
    const source = objects.find((o) => o.kind === kind && o.metadata?.name === name);
    if (!source) return undefined;
    return kind === 'ConfigMap' ? ((source.data ?? {}) as Record<string, string>) : decodeSecret(source);
  };
  for (const from of (container.envFrom ?? []) as K8sObject[]) {
    const ref = from.configMapRef ?? from.secretRef;
    const kind = from.configMapRef ? 'ConfigMap' : 'Secret';
    const data = dataOf(kind, ref?.name);
    if (!data) {
      if (!ref?.optional && !missingOk(kind, ref?.name))
        problems.push(`${where}: envFrom names ${kind} ${ref?.name}, which is not in the manifests`);
      continue;
    }
    for (const [key, value] of Object.entries(data)) {
      env[key] = value;
      sources[key] = { from: kind, name: ref.name, key };
    }
  }
  for (const e of (container.env ?? []) as K8sObject[]) {
    if (typeof e.value === 'string') {
      env[e.name] = e.value;
      sources[e.name] = { from: 'value' };
      continue;
    }
    const field = e.valueFrom?.resourceFieldRef;
    if (field) {
      const value = resourceValue(container, field);
      if (value === undefined) problems.push(`${where}: ${e.name} reads ${field.resource}, which this container lacks`);
      else env[e.name] = value;
      sources[e.name] = { from: 'resource', key: field.resource };
      continue;
    }
    const ref = e.valueFrom?.configMapKeyRef ?? e.valueFrom?.secretKeyRef;
    if (!ref) continue;
    const kind = e.valueFrom.configMapKeyRef ? 'ConfigMap' : 'Secret';
    sources[e.name] = { from: kind, name: ref.name, key: ref.key };
    const value = dataOf(kind, ref.name)?.[ref.key];
    if (value !== undefined) env[e.name] = value;
    else if (!ref.optional && !missingOk(kind, ref.name))
      problems.push(`${where}: ${e.name} reads ${kind} ${ref.name} key ${ref.key}, which is not in the manifests`);
  }
  return { env, sources };
}

export function probePath(probe: K8sObject | undefined): string | undefined {
  return probe?.httpGet?.path as string | undefined;
}

export function portNumber(container: K8sObject, port: unknown): number | undefined {
  if (typeof port === 'number') return port;
  return (container.ports as K8sObject[] | undefined)?.find((p) => p.name === port)?.containerPort as number;
}

/** Whether a label selector (matchLabels only: the manifests use no expressions) selects these labels. */
export function selects(selector: K8sObject | undefined, labels: Record<string, string> | undefined): boolean {
  const match = (selector?.matchLabels ?? {}) as Record<string, string>;
  return Object.keys(match).length > 0 && Object.entries(match).every(([k, v]) => labels?.[k] === v);
}
