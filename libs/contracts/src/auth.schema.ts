import { z } from 'zod';

/**
 * What a key may do. `viewer`: read its tenant's jobs, datasets and models. `member`: also submit,
 * upload, cancel and delete in its tenant. `admin`: everything in every tenant, plus API keys,
 * the audit log and the dashboard.
 */
export const ROLES = ['viewer', 'member', 'admin'] as const;
export const roleSchema = z.enum(ROLES);
export type Role = z.infer<typeof roleSchema>;

/** Whether `role` is at least `needed` (viewer < member < admin). */
export const roleAtLeast = (role: Role, needed: Role): boolean => ROLES.indexOf(role) >= ROLES.indexOf(needed);

/** A tenant names a folder in the store and a Redis key part: the model-name alphabet. */
export const tenantSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'must be 1-64 chars of a-z, 0-9, "_" or "-", starting with a letter or digit');

/** Who is calling: the key that authenticated the request, its tenant and its role. */
export interface Principal {
  /** The key's public id (`tq_<id>_...`), or "config-admin" / "auth-off". */
  keyId: string;
  tenant: string;
  role: Role;
}

/** The public part of an API key: every key is `tq_<id>_<secret>`; ids are 12 hex digits. */
export const apiKeyIdSchema = z.string().regex(/^[a-f0-9]{12}$/, 'must be a key id (12 hex digits)');

export const apiKeyCreateSchema = z
  .object({
    /** For people: what the key is for ("ci", "alice's laptop"). */
    name: z.string().min(1).max(64),
    tenant: tenantSchema,
    role: roleSchema,
    /** Unset: the key lives until revoked. */
    expiresInSeconds: z
      .number()
      .int()
      .min(60)
      .max(10 * 365 * 86_400)
      .optional(),
  })
  .strict();
export type ApiKeyCreate = z.infer<typeof apiKeyCreateSchema>;

/** A key as listed: never its secret or its hash. */
export const apiKeyViewSchema = z.object({
  id: apiKeyIdSchema,
  /** How the key starts (`tq_<id>_`), to recognise it. */
  prefix: z.string(),
  name: z.string(),
  tenant: tenantSchema,
  role: roleSchema,
  createdAt: z.iso.datetime(),
  expiresAt: z.iso.datetime().optional(),
  revokedAt: z.iso.datetime().optional(),
});
export type ApiKeyView = z.infer<typeof apiKeyViewSchema>;

/** The answer to a create: the only time the whole key is shown. */
export const apiKeyCreatedSchema = apiKeyViewSchema.extend({ key: z.string() });
export type ApiKeyCreated = z.infer<typeof apiKeyCreatedSchema>;

export const apiKeyListSchema = z.object({ items: z.array(apiKeyViewSchema) });
export type ApiKeyList = z.infer<typeof apiKeyListSchema>;
