import { aliasNameSchema, modelVersionSchema, servedRefSchema } from '@tq/contracts';

/** What names the version after the model: a version number, an alias, or either (`name@ref`). */
type RefField = 'version' | 'alias' | 'ref';

/**
 * The API's model routes a replica answers, by the same paths: predict by version, by alias and
 * as `name@version-or-alias`, and explain by version. `action` is the route as the API's audit
 * log names it.
 */
const ROUTES = [
  {
    kind: 'predict',
    pattern: /^\/v1\/models\/([^/]+)\/versions\/([^/]+)\/predict\/?$/,
    field: 'version',
    schema: modelVersionSchema,
    action: 'POST /v1/models/:name/versions/:version/predict',
  },
  {
    kind: 'predict',
    pattern: /^\/v1\/models\/([^/]+)\/aliases\/([^/]+)\/predict\/?$/,
    field: 'alias',
    schema: aliasNameSchema,
    action: 'POST /v1/models/:name/aliases/:alias/predict',
  },
  {
    kind: 'predict',
    pattern: /^\/v1\/models\/([^/@]+)@([^/@]+)\/predict\/?$/,
    field: 'ref',
    schema: servedRefSchema,
    action: 'POST /v1/models/:ref/predict',
  },
  {
    kind: 'explain',
    pattern: /^\/v1\/models\/([^/]+)\/versions\/([^/]+)\/explain\/?$/,
    field: 'version',
    schema: modelVersionSchema,
    action: 'POST /v1/models/:name/versions/:version/explain',
  },
] as const;

export type ModelRoute = (typeof ROUTES)[number];

/** A request's route, with the model's name and its version's reference as the path has them (still encoded). */
export interface RouteMatch {
  route: ModelRoute;
  rawName: string;
  rawRef: string;
  field: RefField;
}

/** The model route of a POST's path, or undefined (a 404). */
export function modelRouteOf(path: string): RouteMatch | undefined {
  for (const route of ROUTES) {
    const m = route.pattern.exec(path);
    if (m) return { route, rawName: m[1]!, rawRef: m[2]!, field: route.field };
  }
  return undefined;
}
