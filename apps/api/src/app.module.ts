import { Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { QueueModule } from '@tq/queue';
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
import { ModelsController } from './models/models.controller';
import { ServeForwarder } from './models/serve-forwarder';
import { RedisEpoch } from './redis/redis-epoch.service';
import { RedisReady } from './redis/redis-ready.guard';

/** HTTP only: produces jobs, serves the registry and the dashboard; runs no processors. */
@Module({
  imports: [QueueModule.forRoot({ role: 'api' }), StorageModule, ComputeModule, DashboardModule],
  controllers: [
    KeysController,
    AuditController,
    JobsController,
    DatasetsController,
    ModelsController,
    HealthController,
    MetricsController,
  ],
  providers: [
    AuthService,
    AuditService,
    { provide: APP_GUARD, useClass: AuthGuard },
    JobsService,
    DatasetUploads,
    SubmissionChecks,
    JobEventsService,
    MetricsService,
    JobIds,
    UnansweredWrites,
    RedisEpoch,
    RedisReady,
    ServeForwarder,
    { provide: APP_FILTER, useClass: ErrorsFilter },
  ],
})
export class AppModule {}
