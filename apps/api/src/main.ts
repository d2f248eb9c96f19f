import 'reflect-metadata';
import { ConsoleLogger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { loadConfig, logLevels } from '@tq/config';
import { AppModule } from './app.module';
import { hardenHttp } from './common/http-hardening';
import { withBinaryRows } from './common/openapi';
import { RedisClientHolder } from '@tq/queue';
import { LISTEN_BACKLOG, applyKeepAlive, serveMetrics } from '@tq/runtime';
import { DASHBOARD_ROUTE } from './dashboard/dashboard.module';
import { auditMiddleware } from './audit/audit.middleware';
import { AuditService } from './audit/audit.service';
import { authMiddleware } from './auth/auth.middleware';
import { AuthService } from './auth/auth.service';
import { MetricsService } from './metrics/metrics.service';
import { dashboardGuard } from './redis/redis-ready.guard';
import { TENANT_HEADER } from './auth/tenant-scope';

/** How long a shutdown may wait for its clean-up while Redis is away. */
const SHUTDOWN_WITHOUT_REDIS_MS = 3000;
type ListenWithBacklog = (port: number, hostname: string, backlog: number) => Promise<unknown>;

async function bootstrap(): Promise<void> {
  const config = loadConfig();
  const logger = new ConsoleLogger('api', { json: config.LOG_JSON, logLevels: logLevels(config) });
  const app = await NestFactory.create<NestExpressApplication>(AppModule, { logger, bodyParser: false });
  // First: every request reaches it, those that a later middleware (body parser, auth) answers too.
  app.use(auditMiddleware(app.get(AuditService)));
  // Request ids, security headers, CORS, and per-route JSON limits, ahead of every route.
  hardenHttp(app, config);
  app.enableShutdownHooks();
  const redis = app.get(RedisClientHolder);
  // Registered before init, so ahead of bull-board's router (mounted by its module at init).
  app.use(DASHBOARD_ROUTE, dashboardGuard(redis));
  // bull-board and the OpenAPI UI are express routes, out of reach of the global AuthGuard.
  const auth = app.get(AuthService);
  app.use(DASHBOARD_ROUTE, authMiddleware(auth, 'admin'));
  app.use(['/docs', '/docs-json'], authMiddleware(auth, 'viewer'));
  // BullMQ's close() waits for a first connection that a Redis away since the start never gives:
  // the API then never exited on SIGTERM. With Redis away there is nothing to finish: exit anyway.
  for (const signal of ['SIGTERM', 'SIGINT'] as const)
    process.once(signal, () => {
      if (!redis.ready) setTimeout(() => process.exit(1), SHUTDOWN_WITHOUT_REDIS_MS).unref();
    });
  const openapi = new DocumentBuilder()
    .setTitle('TensorQueue')
    .setDescription('Train, compress and batch-infer TensorFlow.js models as jobs')
    .setVersion('1')
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'An API key: tq_<id>_<secret>' })
    .addSecurityRequirements('bearer')
    .addGlobalParameters({
      name: TENANT_HEADER,
      in: 'header',
      required: false,
      description: "An admin's choice of tenant (default: its key's); a member's may only name its own",
      schema: { type: 'string' },
    })
    .build();
  SwaggerModule.setup('docs', app, () => withBinaryRows(SwaggerModule.createDocument(app, openapi)));
  applyKeepAlive(app.getHttpServer());
  // NestApplication.listen hands its arguments on to http.Server.listen; its types stop at the host.
  await (app.listen as unknown as ListenWithBacklog).call(app, config.PORT, config.HOST, LISTEN_BACKLOG);
  const url = (await app.getUrl()).replace('[::1]', 'localhost');
  logger.log(`API ${url}  docs ${url}/docs  dashboard ${url}${DASHBOARD_ROUTE}`);
  // /metrics on PORT needs a key; Prometheus (and the kubelet's liveness probe) get this listener
  // instead, on the cluster network only. Started after the API port, so it answering means both do.
  if (config.API_METRICS_PORT > 0) {
    const metrics = await serveMetrics(app.get(MetricsService).registry, config.HOST, config.API_METRICS_PORT);
    logger.log(`metrics (no key: keep this port off public networks) http://${config.HOST}:${metrics.port}/metrics`);
  }
}

void bootstrap();
