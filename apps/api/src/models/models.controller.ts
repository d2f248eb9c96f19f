import { Body, Controller, Get, HttpCode, Param, Post, Req, Res } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import {
  NotFoundError,
  aliasNameSchema,
  atRefSchema,
  explainRequestSchema,
  explainResponseSchema,
  modelDetailSchema,
  modelListSchema,
  modelNameSchema,
  modelVersionSchema,
  modelVersionViewSchema,
  predictRequestSchema,
  predictResponseSchema,
  type ExplainRequest,
  type ExplainResponse,
  type ModelDetail,
  type ModelList,
  type ModelVersionMeta,
  type ModelVersionView,
  type PredictResponse,
} from '@tq/contracts';
import { loadConfig } from '@tq/config';
import { explainVersion, predictVersion, resolveServed } from '@tq/jobs';
import { InferenceEngine } from '@tq/ml';
import { AliasStore } from '@tq/queue';
import { ModelNotFoundError, ModelRegistry } from '@tq/storage';
import { MinRole } from '../auth/roles';
import { Scope, type TenantScope } from '../auth/tenant-scope';
import { notFoundAs } from '../common/not-found-as';
import { BinaryRowsBody, ErrorResponses, JsonBody, JsonResponse, RawResponse } from '../common/openapi';
import { EXPLAIN_EXAMPLE, EXPLAIN_EXAMPLES, PREDICT_EXAMPLE, PREDICT_EXAMPLES } from '../common/openapi-examples';
import { sendArtifact, serveOptions } from '../common/send-stream';
import { ZodPipe } from '../common/zod-body.pipe';
import { PredictMetricsService } from '../metrics/predict-metrics.service';
import { PredictBodyPipe, predictInputOf, type PredictPayload } from './predict-body.pipe';
import { ServeForwarder } from './serve-forwarder';

/** A Map: a plain object would answer for "constructor" or "__proto__". */
const ARTIFACT_TYPES = new Map([
  ['json', 'application/json'],
  ['bin', 'application/octet-stream'],
  ['onnx', 'application/octet-stream'],
]);

/** A missing version names the "version" field (a missing artifact file keeps its own, "file"). */
const versionNotFound = notFoundAs(ModelNotFoundError, 'version');

@ApiTags('models')
@Controller('v1/models')
export class ModelsController {
  constructor(
    private readonly registry: ModelRegistry,
    private readonly engine: InferenceEngine,
    private readonly aliases: AliasStore,
    private readonly predictMetrics: PredictMetricsService,
    private readonly forwarder: ServeForwarder,
  ) {}

  @Get()
  @JsonResponse(
    200,
    modelListSchema,
    'every model name of the tenant (an admin without X-Tenant: of every tenant) and its latest version',
  )
  async list(@Scope() scope: TenantScope): Promise<ModelList> {
    const tenants = scope.all ? await this.registry.store.tenants() : [scope.tenant];
    const lists = await Promise.all(
      tenants.map(async (tenant) => {
        const registry = this.registry.forTenant(tenant);
        const names = await registry.names();
        return Promise.all(
          names.map(async (name) => ({ name, latestVersion: await registry.latestVersion(name), tenant })),
        );
      }),
    );
    return lists.flat();
  }

  /** Names are per tenant: another tenant's model is a 404 as one that does not exist. */
  @Get(':name')
  @JsonResponse(200, modelDetailSchema, 'every version of the model')
  @ErrorResponses(400, 404)
  async get(
    @Param('name', new ZodPipe(modelNameSchema, 'name')) name: string,
    @Scope() scope: TenantScope,
  ): Promise<ModelDetail> {
    const versions = await this.registry.forTenant(scope.tenant).versions(name);
    if (versions.length === 0) throw new NotFoundError('name', `no model "${name}"`);
    return { name, versions: versions.map((v) => this.withUrls(v)) };
  }

  @Get(':name/versions/:version')
  @JsonResponse(200, modelVersionViewSchema, 'metadata, metrics, lineage and artifact URLs')
  @ErrorResponses(400, 404)
  async version(
    @Param('name', new ZodPipe(modelNameSchema, 'name')) name: string,
    @Param('version', new ZodPipe(modelVersionSchema, 'version')) version: number,
    @Scope() scope: TenantScope,
  ): Promise<ModelVersionView> {
    return this.withUrls(await this.meta(scope, { name, version }));
  }

  /** model.json, weights.bin, model.onnx...: stock tf.loadLayersModel(<.../model.json>) loads from here. */
  @Get(':name/versions/:version/:file')
  @RawResponse('application/octet-stream', 'the artifact (model.json as application/json)', 'binary')
  @ErrorResponses(400, 404)
  async artifact(
    @Param('name', new ZodPipe(modelNameSchema, 'name')) name: string,
    @Param('version', new ZodPipe(modelVersionSchema, 'version')) version: number,
    @Param('file') file: string,
    @Scope() scope: TenantScope,
    @Req() req: Request,
    @Res() res: Response,
  ): Promise<void> {
    // Streamed from the blob store, or a redirect to the bucket (DOWNLOAD_REDIRECT_SECONDS).
    const served = await this.registry
      .forTenant(scope.tenant)
      .serveArtifact({ name, version }, file, serveOptions(loadConfig().DOWNLOAD_REDIRECT_SECONDS))
      .catch(versionNotFound);
    sendArtifact(req, res, served, ARTIFACT_TYPES.get(file.split('.').pop() ?? '') ?? 'application/octet-stream');
  }

  @Post(':name/versions/:version/predict')
  // Reads a model and changes nothing: a viewer may predict.
  @MinRole('viewer')
  @HttpCode(200)
  @JsonBody(predictRequestSchema, PREDICT_EXAMPLE, PREDICT_EXAMPLES)
  @BinaryRowsBody()
  @JsonResponse(200, predictResponseSchema, 'one prediction per instance or record, in order')
  @ErrorResponses(400, 404, 429, 503, 504)
  async predict(
    @Param('name', new ZodPipe(modelNameSchema, 'name')) name: string,
    @Param('version', new ZodPipe(modelVersionSchema, 'version')) version: number,
    @Body(PredictBodyPipe) body: PredictPayload,
    @Scope() scope: TenantScope,
  ): Promise<PredictResponse> {
    return this.serve(scope, name, String(version), body);
  }

  @Post(':name/aliases/:alias/predict')
  @MinRole('viewer')
  @HttpCode(200)
  @JsonBody(predictRequestSchema, PREDICT_EXAMPLE, PREDICT_EXAMPLES)
  @BinaryRowsBody()
  @JsonResponse(200, predictResponseSchema, "predict on the alias's version (or its canary's): `model` says which")
  @ErrorResponses(400, 404)
  async predictAlias(
    @Param('name', new ZodPipe(modelNameSchema, 'name')) name: string,
    @Param('alias', new ZodPipe(aliasNameSchema, 'alias')) alias: string,
    @Body(PredictBodyPipe) body: PredictPayload,
    @Scope() scope: TenantScope,
  ): Promise<PredictResponse> {
    return this.serve(scope, name, alias, body);
  }

  /** `digits@production/predict` (or `digits@3`): the alias or version in the model's segment. */
  @Post(':ref/predict')
  @MinRole('viewer')
  @HttpCode(200)
  @JsonBody(predictRequestSchema, PREDICT_EXAMPLE, PREDICT_EXAMPLES)
  @BinaryRowsBody()
  @JsonResponse(200, predictResponseSchema, 'predict on `<model>@<alias or version>`: `model` says which version')
  @ErrorResponses(400, 404)
  async predictAt(
    @Param('ref', new ZodPipe(atRefSchema, 'ref')) at: { name: string; ref: string },
    @Body(PredictBodyPipe) body: PredictPayload,
    @Scope() scope: TenantScope,
  ): Promise<PredictResponse> {
    return this.serve(scope, at.name, at.ref, body);
  }

  /** Every predict route: the version served (resolveServed, as serve replicas do), counted per version and alias. */
  private async serve(
    scope: TenantScope,
    name: string,
    aliasOrVersion: string,
    body: PredictPayload,
  ): Promise<PredictResponse> {
    const served = await resolveServed(this.aliases, scope.tenant, name, aliasOrVersion);
    // Read before it is counted: only versions that exist label a series (a client naming ones that
    // do not cannot grow /metrics; their 404s are not counted).
    const meta = await this.meta(scope, { name, version: served.version });
    return this.predictMetrics.observe(scope.tenant, name, served, async () => {
      // Records go through the version's preprocessing; regression answers in target units (@tq/jobs predict.ts).
      // On a serve replica when any is registered (SERVE_MODE), else here, as before.
      const forwarded = await this.forwarder.predict(scope.tenant, name, served.version, body);
      return forwarded ?? predictVersion(this.engine.forTenant(scope.tenant), meta, predictInputOf(body));
    });
  }

  @Post(':name/versions/:version/explain')
  // Like predict: reads a model, changes nothing.
  @MinRole('viewer')
  @HttpCode(200)
  @JsonBody(explainRequestSchema, EXPLAIN_EXAMPLE, EXPLAIN_EXAMPLES)
  @JsonResponse(
    200,
    explainResponseSchema,
    'per row: integrated-gradients attributions per feature (per column for a table model), the target explained, ' +
      'its value at the row and at the baseline, and the completeness gap',
  )
  @ErrorResponses(400, 404, 413)
  async explain(
    @Param('name', new ZodPipe(modelNameSchema, 'name')) name: string,
    @Param('version', new ZodPipe(modelVersionSchema, 'version')) version: number,
    @Body(new ZodPipe(explainRequestSchema)) body: ExplainRequest,
    @Scope() scope: TenantScope,
  ): Promise<ExplainResponse> {
    // On a serve replica when any is registered (SERVE_MODE), else here (tfjs gradients; @tq/jobs explain.ts).
    const meta = await this.meta(scope, { name, version });
    const forwarded = await this.forwarder.explain(scope.tenant, name, version, body);
    if (forwarded) return forwarded;
    const deps = {
      registry: this.registry.forTenant(scope.tenant),
      engine: this.engine.forTenant(scope.tenant),
      maxValues: loadConfig().MAX_EXPLAIN_VALUES,
    };
    return explainVersion(deps, meta, body);
  }

  private meta(scope: TenantScope, ref: { name: string; version: number }): Promise<ModelVersionMeta> {
    return this.registry.forTenant(scope.tenant).getVersion(ref).catch(versionNotFound);
  }

  private withUrls(meta: ModelVersionMeta): ModelVersionView {
    const base = `/v1/models/${meta.name}/versions/${meta.version}`;
    return { ...meta, urls: Object.fromEntries(Object.keys(meta.artifacts).map((f) => [f, `${base}/${f}`])) };
  }
}
