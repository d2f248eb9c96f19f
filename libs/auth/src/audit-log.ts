import { auditEntrySchema, type AuditEntry, type AuditPage, type AuditQuery, type AuditRecord } from '@tq/contracts';
import type { RedisClient } from '@tq/queue';

export interface AuditLogOptions {
  /** AUDIT_RETENTION_DAYS: entries older than this are trimmed by each write, and never read. */
  retentionDays: number;
  /** Strings that must never be stored (TQ_ADMIN_KEY): replaced wherever a request put them. */
  secrets?: ReadonlyArray<string | undefined>;
}

const DAY_MS = 86_400_000;
/** A recorded string longer than this (a path, an id a client made up) is cut: entries stay small. */
const MAX_TEXT = 512;
/** Entries one page may read past the ones it returns: filters that match little stop a page early. */
const MAX_SCANNED = 10_000;
/** An API key anywhere in a text (a client that sent one as an id): its secret never reaches the log. */
const API_KEY = /tq_([a-f0-9]{12})_[A-Za-z0-9_-]+/g;

/**
 * The audit log: one Redis stream, `<prefix>:audit` (a cluster's hash tag keeps it in the prefix's
 * slot), append-only. Nothing edits or deletes an entry but the retention trim (MINID) that every
 * append does. Entry ids carry the writer's clock, so that the trim and the `since`/`until` filters
 * go by the time of the request.
 */
export class AuditLog {
  readonly key: string;
  private readonly retentionMs: number;
  private readonly secrets: string[];

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    options: AuditLogOptions,
  ) {
    this.key = `${prefix}:audit`;
    this.retentionMs = options.retentionDays * DAY_MS;
    this.secrets = (options.secrets ?? []).filter((s): s is string => !!s);
  }

  /** Appends one entry at `now` and trims the ones past the retention; returns the entry's id. */
  async append(record: AuditRecord, now = new Date()): Promise<string> {
    const fields = this.fieldsOf(record, now);
    const minId = String(this.oldestKeptMs(now));
    try {
      return (await this.redis.xadd(this.key, 'MINID', minId, `${now.getTime()}-*`, ...fields))!;
    } catch (err) {
      // Another replica whose clock is ahead wrote a later id: ids must grow, so take the stream's next.
      if (!(err instanceof Error) || !err.message.includes('equal or smaller')) throw err;
      return (await this.redis.xadd(this.key, 'MINID', minId, '*', ...fields))!;
    }
  }

  /** One page, newest first: at most `limit` matching entries, and where the next page starts. */
  async page(query: AuditQuery, now = new Date()): Promise<AuditPage> {
    const oldest = Math.max(this.oldestKeptMs(now), query.since ? Date.parse(query.since) : 0);
    const start = String(oldest);
    let end = query.cursor ? `(${query.cursor}` : query.until ? String(Date.parse(query.until)) : '+';
    const matches = matcherOf(query);
    const items: AuditEntry[] = [];
    const batch = Math.max(query.limit, 100);
    let scanned = 0;
    while (scanned < MAX_SCANNED) {
      const entries = await this.redis.xrevrange(this.key, end, start, 'COUNT', batch);
      for (const [i, [id, fields]] of entries.entries()) {
        scanned += 1;
        const entry = entryOf(id, fields);
        if (matches(entry)) items.push(entry);
        const exhausted = entries.length < batch && i === entries.length - 1;
        if (items.length === query.limit) return exhausted ? { items } : { items, nextCursor: id };
      }
      if (entries.length < batch) return { items };
      end = `(${entries[entries.length - 1]![0]}`;
    }
    // Work bounded: the caller goes on from here (the stream id just before `end`'s exclusion).
    return { items, nextCursor: end.slice(1) };
  }

  private oldestKeptMs(now: Date): number {
    return Math.max(0, now.getTime() - this.retentionMs);
  }

  /** The stream fields of a record: flat, readable with redis-cli; absent values left out. */
  private fieldsOf(record: AuditRecord, now: Date): string[] {
    const fields: string[] = ['time', now.toISOString(), 'action', this.clean(record.action)];
    fields.push('result', String(record.result));
    for (const name of ['requestId', 'keyId', 'tenant', 'role', 'client'] as const) {
      const value = record[name];
      if (value !== undefined) fields.push(name, this.clean(value));
    }
    if (record.target && Object.keys(record.target).length > 0) {
      const target = Object.fromEntries(Object.entries(record.target).map(([k, v]) => [this.clean(k), this.clean(v)]));
      fields.push('target', JSON.stringify(target));
    }
    if (record.incomplete) fields.push('incomplete', '1');
    return fields;
  }

  /** A client-given text as stored: no API key secret, no configured secret, bounded. */
  private clean(text: string): string {
    let out = text.replace(API_KEY, 'tq_$1_[redacted]');
    for (const secret of this.secrets) out = out.split(secret).join('[redacted]');
    return out.length > MAX_TEXT ? `${out.slice(0, MAX_TEXT)}…` : out;
  }
}

/** A stream entry read back, checked against the contract. */
function entryOf(id: string, fields: string[]): AuditEntry {
  const raw: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) raw[fields[i]!] = fields[i + 1]!;
  return auditEntrySchema.parse({
    id,
    time: raw.time,
    requestId: raw.requestId,
    keyId: raw.keyId,
    tenant: raw.tenant,
    role: raw.role,
    action: raw.action,
    target: raw.target === undefined ? undefined : (JSON.parse(raw.target) as unknown),
    result: Number(raw.result),
    client: raw.client,
    incomplete: raw.incomplete === '1' ? true : undefined,
  });
}

/** The filters of a query other than time, as one predicate. */
function matcherOf(query: AuditQuery): (entry: AuditEntry) => boolean {
  const action = query.action?.toLowerCase();
  const result = query.result;
  const untilMs = query.until ? Date.parse(query.until) : undefined;
  return (e) =>
    (query.tenant === undefined || e.tenant === query.tenant) &&
    (query.keyId === undefined || e.keyId === query.keyId) &&
    (action === undefined || e.action.toLowerCase().includes(action)) &&
    (result === undefined || resultMatches(e.result, result)) &&
    // With a cursor the range starts below it: `until` still applies.
    (untilMs === undefined || Number(e.id.split('-')[0]) <= untilMs);
}

/** "404" is that status, "4xx" the class. */
function resultMatches(status: number, filter: string): boolean {
  return filter.endsWith('xx') ? String(status)[0] === filter[0] : String(status) === filter;
}
