import { Controller, Get, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { auditPageSchema, auditQuerySchema, type AuditPage, type AuditQuery } from '@tq/contracts';
import { MinRole } from '../auth/roles';
import { ErrorResponses, JsonResponse, QueryFrom } from '../common/openapi';
import { ZodPipe } from '../common/zod-body.pipe';
import { RedisReady } from '../redis/redis-ready.guard';
import { AuditService } from './audit.service';

/** The audit log, for admins: read-only (no route edits or deletes an entry). */
@ApiTags('audit')
@ApiBearerAuth()
@Controller('v1/audit')
@UseGuards(RedisReady)
@MinRole('admin')
export class AuditController {
  constructor(private readonly audit: AuditService) {}

  @Get()
  @ApiOperation({ summary: 'Audit log: every state-changing request and every auth failure, newest first' })
  @QueryFrom(auditQuerySchema)
  @JsonResponse(200, auditPageSchema, 'one page of entries; nextCursor while older ones may match')
  @ErrorResponses(400, 401, 403, 503)
  list(@Query(new ZodPipe(auditQuerySchema)) query: AuditQuery): Promise<AuditPage> {
    return this.audit.page(query);
  }
}
