import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { BullBoardModule } from '@bull-board/nestjs';
import { Module } from '@nestjs/common';
import { ALL_QUEUES } from '@tq/contracts';

export const DASHBOARD_ROUTE = '/admin/queues';

/** bull-board over every queue (internal ones too: aggregator and shard jobs of distributed runs). */
@Module({
  imports: [
    BullBoardModule.forRoot({
      route: DASHBOARD_ROUTE,
      adapter: ExpressAdapter,
      boardOptions: { uiConfig: { boardTitle: 'TensorQueue' } },
    }),
    ...ALL_QUEUES.map((name) => BullBoardModule.forFeature({ name, adapter: BullMQAdapter })),
  ],
})
export class DashboardModule {}
