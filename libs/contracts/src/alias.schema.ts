import { z } from 'zod';
import { modelNameSchema } from './names.schema';

/**
 * Alias names share the model names' alphabet: they appear in URL paths (`digits@production`,
 * `.../aliases/production`) and Redis keys, so no separator, "@", dot or path character.
 */
export const aliasNameSchema = modelNameSchema;

/** A version in a JSON body: a positive integer (the path's version is coerced from text instead). */
const bodyVersionSchema = z.number().int().positive();

/** PUT /v1/models/:name/aliases/:alias: the version it serves, and optionally a canary share. */
export const aliasTargetSchema = z
  .object({
    version: bodyVersionSchema,
    /** `weight` of the requests (0 to 1, drawn per request) go to `canary.version` instead. */
    canary: z
      .object({
        version: bodyVersionSchema,
        weight: z.number().min(0, 'must be in [0, 1]').max(1, 'must be in [0, 1]'),
      })
      .strict()
      .optional(),
  })
  .strict();
export type AliasTarget = z.infer<typeof aliasTargetSchema>;

/** One alias as the API answers it. */
export const aliasViewSchema = aliasTargetSchema.extend({
  alias: aliasNameSchema,
  model: modelNameSchema,
  updatedAt: z.string(),
});
export type AliasView = z.infer<typeof aliasViewSchema>;

/** GET /v1/models/:name/aliases, by alias name. */
export const aliasListSchema = z.object({ items: z.array(aliasViewSchema) });
export type AliasList = z.infer<typeof aliasListSchema>;

/**
 * What a predict path names after the model: a version number ("3") or an alias ("production").
 * Alias names may be all digits too; a number is always read as a version.
 */
export const servedRefSchema = z.union([z.string().regex(/^\d{1,15}$/), aliasNameSchema]);

/** `name@aliasOrVersion`, the one-segment form of predict's path. */
export const atRefSchema = z
  .string()
  .regex(/^[^@]+@[^@]+$/, 'must be <model>@<alias or version>')
  .transform((s) => {
    const at = s.indexOf('@');
    return { name: s.slice(0, at), ref: s.slice(at + 1) };
  })
  .pipe(z.object({ name: modelNameSchema, ref: servedRefSchema }));
