import { z } from 'zod';
import { roleSchema, tenantSchema } from './auth.schema';

/** A Redis stream entry id, `<ms>-<seq>`: an audit entry's id, and the paging cursor. */
export const auditIdSchema = z.string().regex(/^\d{1,15}-\d{1,20}$/, 'must be an audit entry id (<ms>-<seq>)');

/**
 * One audited request: every state-changing one (any method but GET, HEAD, OPTIONS) and every
 * auth failure (401, 403). Who (key, tenant, role: absent for a 401), what (action, target), the
 * answer (result) and when. Never a key's secret, never a header but the request id.
 */
export const auditEntrySchema = z.object({
  /** The stream entry id: ms of the recording replica's clock, then a sequence number. */
  id: auditIdSchema,
  /** When the response was finished (or the client went away). */
  time: z.iso.datetime(),
  /** X-Request-Id of the request (as the API answered it, else as sent). */
  requestId: z.string().optional(),
  /** The key's public id (`tq_<id>_...`), "config-admin" (TQ_ADMIN_KEY) or "auth-off". */
  keyId: z.string().optional(),
  tenant: z.string().optional(),
  role: roleSchema.optional(),
  /** Method and route pattern ("POST /v1/jobs/train"); the path itself where no route matched. */
  action: z.string(),
  /** The ids the request named: the route's path parameters, and `id` of a 2xx JSON answer (the created job, dataset, key). */
  target: z.record(z.string(), z.string()).optional(),
  /** The HTTP status answered. */
  result: z.number().int(),
  /** The client's address (express's req.ip: the socket's, or X-Forwarded-For's with `trust proxy`). */
  client: z.string().optional(),
  /** True when the client went away before the answer was complete (`result` is then what was set so far). */
  incomplete: z.boolean().optional(),
});
export type AuditEntry = z.infer<typeof auditEntrySchema>;

/** What is recorded: an entry before the log gives it its id and time. */
export type AuditRecord = Omit<AuditEntry, 'id' | 'time'>;

const datetime = z.iso.datetime({ offset: true });

/** GET /v1/audit: newest first; every filter optional, all of them must match. */
export const auditQuerySchema = z
  .object({
    since: datetime.optional().describe('entries at or after this time (ISO 8601)'),
    until: datetime.optional().describe('entries at or before this time (ISO 8601)'),
    tenant: tenantSchema.optional().describe("the caller's tenant"),
    keyId: z
      .string()
      .regex(/^[a-z0-9-]{1,64}$/, 'must be a key id (12 hex digits, or config-admin / auth-off)')
      .optional()
      .describe("the caller's key id"),
    action: z.string().min(1).max(200).optional().describe('a part of the action, any case ("POST /v1/jobs", "retry")'),
    result: z
      .string()
      .regex(/^[1-5](\d\d|xx)$/, 'must be a status (404) or a class (4xx)')
      .optional()
      .describe('a status (403) or a class (4xx)'),
    cursor: auditIdSchema.optional().describe("the previous page's nextCursor: the entries older than it"),
    limit: z.coerce.number().int().min(1).max(1000).default(100).describe('entries per page, at most 1000'),
  })
  .strict();
export type AuditQuery = z.output<typeof auditQuerySchema>;

/** One page of GET /v1/audit. */
export const auditPageSchema = z.object({
  items: z.array(auditEntrySchema),
  /**
   * Present while older entries may match: pass it as `cursor`. A page may hold fewer than `limit`
   * items (filters that skip many entries stop a page early, to bound its work).
   */
  nextCursor: auditIdSchema.optional(),
});
export type AuditPage = z.infer<typeof auditPageSchema>;
