import type { Role } from '@tq/contracts';
import type { TestSystem } from './system';

/** A client of one tenant: its own key (made by the admin over POST /v1/keys), same API. */
export interface TenantClient {
  tenant: string;
  key: string;
  request(method: string, path: string, body?: unknown): Promise<{ status: number; body: any; headers: Headers }>;
}

export async function tenantClient(system: TestSystem, tenant: string, role: Role = 'member'): Promise<TenantClient> {
  const made = await system.request('POST', '/v1/keys', { name: `${tenant}-${role}`, tenant, role });
  if (made.status !== 201) throw new Error(`key for ${tenant}: ${made.status} ${JSON.stringify(made.body)}`);
  const key = made.body.key as string;
  return {
    tenant,
    key,
    async request(method, path, body) {
      const res = await system.fetch(path, {
        method,
        headers: {
          authorization: `Bearer ${key}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        /* not JSON: keep the text */
      }
      return { status: res.status, body: parsed, headers: res.headers };
    },
  };
}
