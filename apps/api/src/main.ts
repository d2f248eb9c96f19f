import 'reflect-metadata';
import { ConsoleLogger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { loadConfig, logLevels } from '@tq/config';
import { AppModule } from './app.module';
import { RedisClientHolder } from '@tq/queue';
import { DASHBOARD_ROUTE } from './dashboard/dashboard.module';
import { dashboardGuard } from './redis/redis-ready.guard';

async function bootstrap(): Promise<void> {
  const config = loadConfig();
  const logger = new ConsoleLogger('api', { json: config.LOG_JSON, logLevels: logLevels(config) });
  const app = await NestFactory.create<NestExpressApplication>(AppModule, { logger, bodyParser: false });
  app.useBodyParser('json', { limit: config.MAX_JSON_BODY_BYTES });
  app.enableShutdownHooks();
  // Registered before init, so ahead of bull-board's router (mounted by its module at init).
  app.use(DASHBOARD_ROUTE, dashboardGuard(app.get(RedisClientHolder)));
  const openapi = new DocumentBuilder()
    .setTitle('TensorQueue')
    .setDescription('Train, compress and batch-infer TensorFlow.js models as jobs')
    .setVersion('1')
    .build();
  SwaggerModule.setup('docs', app, () => SwaggerModule.createDocument(app, openapi));
  await app.listen(config.PORT, config.HOST);
  const url = (await app.getUrl()).replace('[::1]', 'localhost');
  logger.log(`API ${url}  docs ${url}/docs  dashboard ${url}${DASHBOARD_ROUTE}`);
}

void bootstrap();
