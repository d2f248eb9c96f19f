import { Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { AliasStore, QueueModule } from '@tq/queue';
import { ComputeModule, StorageModule } from '@tq/runtime';
import { AuditController } from './audit/audit.controller';
import { AuditService } from './audit/audit.service';
import { AuthGuard } from './auth/auth.guard';
import { AuthService } from './auth/auth.service';
import { KeysController } from './auth/keys.controller';
import { ErrorsFilter } from './common/errors.filter';
import { DashboardModule } from './dashboard/dashboard.module';
import { DatasetUploads } from './datasets/dataset-uploads.service';
import { DatasetsController } from './datasets/datasets.controller';
import { HealthController } from './health/health.controller';
import { JobEventsService } from './jobs/job-events.service';
import { JobIds } from './jobs/job-id';
import { JobsController } from './jobs/jobs.controller';
import { JobsService } from './jobs/jobs.service';
import { SubmissionChecks } from './jobs/submission-checks.service';
import { UnansweredWrites } from './jobs/unanswered-writes.service';
import { MetricsController } from './metrics/metrics.controller';
import { MetricsService } from './metrics/metrics.service';
import { PredictMetricsService } from './metrics/predict-metrics.service';
import { AliasesController } from './models/aliases.controller';
import { ModelsController } from './models/models.controller';
import { ServeForwarder } from './models/serve-forwarder';
import { RedisEpoch } from './redis/redis-epoch.service';
import { RedisReady } from './redis/redis-ready.guard';
import { ApiReplicas } from './quotas/api-replicas.service';
import { RequestRateGuard } from './quotas/request-rate.guard';
import { TenantQuotas } from './quotas/tenant-quotas.service';
import { TenantsController } from './quotas/tenants.controller';

/** HTTP only: produces jobs, serves the registry and the dashboard; runs no processors. */
@Module({
  imports: [QueueModule.forRoot({ role: 'api' }), StorageModule, ComputeModule.forRole('api'), DashboardModule],
  controllers: [
    KeysController,
    AuditController,
    TenantsController,
    JobsController,
    DatasetsController,
    AliasesController,
    ModelsController,
    HealthController,
    MetricsController,
  ],
  providers: [
    AuthService,
    AuditService,
    { provide: APP_GUARD, useClass: AuthGuard },
    // After the AuthGuard (global guards run in this order): it counts the caller's tenant.
    { provide: APP_GUARD, useClass: RequestRateGuard },
    TenantQuotas,
    ApiReplicas,
    JobsService,
    DatasetUploads,
    SubmissionChecks,
    JobEventsService,
    MetricsService,
    PredictMetricsService,
    AliasStore,
    JobIds,
    UnansweredWrites,
    RedisEpoch,
    RedisReady,
    ServeForwarder,
    { provide: APP_FILTER, useClass: ErrorsFilter },
  ],
})
export class AppModule {}
