import type { IncomingMessage } from 'node:http';
import { UnauthorizedError, type AuditRecord, type Principal } from '@tq/contracts';
import { AUTH_OFF, RequestRate, type Authenticator } from '@tq/auth';
import { defaultQuotas, type TenantLimits } from '@tq/queue';

export interface ClientDoorDeps {
  /** The API keys' checker; undefined with AUTH=off (loopback only: every caller the default tenant's admin). */
  authenticator: Authenticator | undefined;
  /** The tenants' quotas (their overrides cached; the defaults when Redis is away). */
  limits: Pick<TenantLimits, 'of'>;
  /** Live serve replicas, this one included (at least 1): each holds 1/N of a tenant's rate. */
  replicas(): number;
  /** Records a refused request in the audit log, in the background (never throws, never waits). */
  audit(record: AuditRecord): void;
}

/**
 * A serve replica's front door for clients (predicts sent straight to the replicas, not through
 * the API): the caller's API key, as the API checks it (Authenticator: cached records, revocations
 * over pub/sub), and its tenant's request rate. A 401 is audited as the API audits one; a predict
 * needs the viewer role, which every key has. The rate: a token bucket per tenant holding 1/N of
 * maxRequestsPerSecond over the N live replicas, as the API replicas share it among themselves; the
 * two doors count apart, so a tenant sending to both may get its rate through each.
 */
export class ClientDoor {
  private readonly rate = new RequestRate();

  constructor(private readonly deps: ClientDoorDeps) {}

  /** The caller of `req` (401 without a valid key), within its tenant's request rate (429 past it). */
  async admit(req: IncomingMessage, action: string): Promise<Principal> {
    const principal = await this.authenticate(req, action);
    // Redis away: the defaults apply (the predict itself needs no Redis).
    const quotas = await this.deps.limits.of(principal.tenant).catch(() => defaultQuotas());
    this.rate.takeShare(principal.tenant, quotas, { count: this.deps.replicas(), kind: 'serve replica' });
    return principal;
  }

  private async authenticate(req: IncomingMessage, action: string): Promise<Principal> {
    if (!this.deps.authenticator) return AUTH_OFF;
    try {
      return await this.deps.authenticator.authenticate(req.headers.authorization);
    } catch (err) {
      if (err instanceof UnauthorizedError) {
        const client = req.socket.remoteAddress;
        this.deps.audit({ action, result: 401, ...(client ? { client } : {}) });
      }
      throw err;
    }
  }
}
