import { Body, Controller, Delete, Get, HttpCode, Param, Post, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import {
  NotFoundError,
  apiKeyCreateSchema,
  apiKeyCreatedSchema,
  apiKeyIdSchema,
  apiKeyListSchema,
  apiKeyViewSchema,
  type ApiKeyCreate,
  type ApiKeyCreated,
  type ApiKeyList,
  type ApiKeyView,
} from '@tq/contracts';
import { viewOf } from '@tq/auth';
import { ErrorResponses, JsonBody, JsonResponse } from '../common/openapi';
import { ZodPipe } from '../common/zod-body.pipe';
import { RedisReady } from '../redis/redis-ready.guard';
import { AuthService } from './auth.service';
import { MinRole } from './roles';

/** API keys, for admins: create (the key is shown once), list (ids and prefixes only), revoke. */
@ApiTags('keys')
@ApiBearerAuth()
@Controller('v1/keys')
@UseGuards(RedisReady)
@MinRole('admin')
export class KeysController {
  constructor(private readonly auth: AuthService) {}

  @Post()
  @HttpCode(201)
  @JsonBody(apiKeyCreateSchema, { name: 'ci', tenant: 'team-a', role: 'member' })
  @JsonResponse(201, apiKeyCreatedSchema, 'the key: its secret is shown this once and stored only hashed')
  @ErrorResponses(400, 401, 403)
  async create(@Body(new ZodPipe(apiKeyCreateSchema)) body: ApiKeyCreate): Promise<ApiKeyCreated> {
    const expiresAt = body.expiresInSeconds ? new Date(Date.now() + body.expiresInSeconds * 1000) : undefined;
    const { record, key } = await this.auth.keys.create({ ...body, expiresAt });
    return { ...viewOf(record), key };
  }

  @Get()
  @JsonResponse(200, apiKeyListSchema, 'every key, newest first, revoked ones included')
  @ErrorResponses(401, 403)
  async list(): Promise<ApiKeyList> {
    return { items: (await this.auth.keys.list()).map(viewOf) };
  }

  @Delete(':id')
  @JsonResponse(200, apiKeyViewSchema, 'the key, now revoked: every API replica refuses it from now on')
  @ErrorResponses(400, 401, 403, 404)
  async revoke(@Param('id', new ZodPipe(apiKeyIdSchema, 'id')) id: string): Promise<ApiKeyView> {
    const revoked = await this.auth.keys.revoke(id);
    if (!revoked) throw new NotFoundError('id', `no API key "${id}"`);
    this.auth.forget(id);
    return viewOf(revoked);
  }
}
