import { Injectable, Logger } from '@nestjs/common';
import { Counter } from 'prom-client';
import { ThrottledLog, type AuditPage, type AuditQuery, type AuditRecord } from '@tq/contracts';
import { loadConfig } from '@tq/config';
import { AuditLog } from '@tq/auth';
import { RedisClientHolder, redisErrorCause } from '@tq/queue';
import { MetricsService } from '../metrics/metrics.service';

/** A Redis away for a while fails every write: one log line per this long, with how many were left out. */
const FAILURE_LOG_INTERVAL_MS = 10_000;

/**
 * The API's side of the audit log: records without ever holding up or failing the request (a
 * write that fails is logged, throttled, and counted in tq_audit_write_failures_total), and reads
 * pages for GET /v1/audit.
 */
@Injectable()
export class AuditService {
  private readonly log: AuditLog;
  private readonly failures: Counter;
  private readonly failureLog: ThrottledLog;

  constructor(redis: RedisClientHolder, metrics: MetricsService) {
    const config = loadConfig();
    this.log = new AuditLog(redis.client, redis.prefix, {
      retentionDays: config.AUDIT_RETENTION_DAYS,
      secrets: [config.TQ_ADMIN_KEY],
    });
    this.failures = new Counter({
      name: 'tq_audit_write_failures_total',
      help: 'Audit log entries that could not be written (Redis away or refusing): the requests were answered anyway',
      registers: [metrics.registry],
    });
    const logger = new Logger('audit');
    this.failureLog = new ThrottledLog((line) => logger.error(line), FAILURE_LOG_INTERVAL_MS);
  }

  /** Writes in the background; never throws, never waits. */
  record(record: AuditRecord): void {
    this.log.append(record).catch((err: unknown) => {
      this.failures.inc();
      this.failureLog.log(`audit entry lost (${record.action} → ${record.result}): ${redisErrorCause(err)}`, 'write');
    });
  }

  page(query: AuditQuery): Promise<AuditPage> {
    return this.log.page(query);
  }
}
