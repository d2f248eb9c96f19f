import { Body, Controller, Delete, Get, Param, Put } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import {
  NotFoundError,
  aliasListSchema,
  aliasNameSchema,
  aliasTargetSchema,
  aliasViewSchema,
  modelNameSchema,
  type AliasList,
  type AliasTarget,
  type AliasView,
} from '@tq/contracts';
import { AliasStore } from '@tq/queue';
import { ModelRegistry } from '@tq/storage';
import { Scope, type TenantScope } from '../auth/tenant-scope';
import { ErrorResponses, JsonBody, JsonResponse } from '../common/openapi';
import { ZodPipe } from '../common/zod-body.pipe';

/**
 * Named pointers to a model's versions (production, staging, ...), per tenant, optionally with a
 * canary share. Predict follows them: `POST /v1/models/digits@production/predict`. Setting one
 * replaces it atomically: every replica's next predict reads the new target.
 */
@ApiTags('models')
@Controller('v1/models/:name/aliases')
export class AliasesController {
  constructor(
    private readonly aliases: AliasStore,
    private readonly registry: ModelRegistry,
  ) {}

  @Get()
  @JsonResponse(200, aliasListSchema, "the model's aliases, by name")
  @ErrorResponses(400)
  async list(
    @Param('name', new ZodPipe(modelNameSchema, 'name')) name: string,
    @Scope() scope: TenantScope,
  ): Promise<AliasList> {
    return { items: await this.aliases.list(scope.tenant, name) };
  }

  @Put(':alias')
  @JsonBody(aliasTargetSchema, { version: 3, canary: { version: 4, weight: 0.1 } })
  @JsonResponse(200, aliasViewSchema, 'the alias, now serving its target on every replica')
  @ErrorResponses(400, 404)
  async put(
    @Param('name', new ZodPipe(modelNameSchema, 'name')) name: string,
    @Param('alias', new ZodPipe(aliasNameSchema, 'alias')) alias: string,
    @Body(new ZodPipe(aliasTargetSchema)) target: AliasTarget,
    @Scope() scope: TenantScope,
  ): Promise<AliasView> {
    // An alias names committed versions only: a typo must not turn into 404s at predict time.
    const registry = this.registry.forTenant(scope.tenant);
    const wanted: Array<[string, number]> = [['version', target.version]];
    if (target.canary) wanted.push(['canary.version', target.canary.version]);
    for (const [field, version] of wanted)
      if (!(await registry.exists({ name, version })))
        throw new NotFoundError(field, `model "${name}" has no version ${version}`);
    return this.aliases.set(scope.tenant, name, alias, target);
  }

  @Delete(':alias')
  @JsonResponse(200, aliasViewSchema, 'the alias removed')
  @ErrorResponses(400, 404)
  async remove(
    @Param('name', new ZodPipe(modelNameSchema, 'name')) name: string,
    @Param('alias', new ZodPipe(aliasNameSchema, 'alias')) alias: string,
    @Scope() scope: TenantScope,
  ): Promise<AliasView> {
    const removed = await this.aliases.delete(scope.tenant, name, alias);
    if (!removed) throw new NotFoundError('alias', `model "${name}" has no alias "${alias}"`);
    return removed;
  }
}
