import { Injectable } from '@nestjs/common';
import { PredictMetrics } from '@tq/serving';
import { MetricsService } from './metrics.service';

/** The API's predict metrics (@tq/serving PredictMetrics) on its registry. */
@Injectable()
export class PredictMetricsService extends PredictMetrics {
  constructor(metrics: MetricsService) {
    super(metrics.registry);
  }
}
