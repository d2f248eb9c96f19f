import { Module, type DynamicModule, type Type } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { QueueName, servedQueues } from '@tq/contracts';
import { loadConfig } from '@tq/config';
import { QueueModule } from '@tq/queue';
import { ComputeModule, StorageModule } from '@tq/runtime';
import { HandlerCheck, SERVED_QUEUES } from './handler-check';
import { AggregateProcessor } from './processors/aggregate.processor';
import { CompressProcessor } from './processors/compress.processor';
import { InferShardProcessor } from './processors/infer-shard.processor';
import { InferProcessor } from './processors/infer.processor';
import { ProfileDatasetProcessor } from './processors/profile-dataset.processor';
import { TrainShardProcessor } from './processors/train-shard.processor';
import { TrainProcessor } from './processors/train.processor';
import { RetentionService } from './retention/retention.service';

const PROCESSOR_OF_QUEUE: Record<QueueName, Type> = {
  [QueueName.Train]: TrainProcessor,
  [QueueName.Compress]: CompressProcessor,
  [QueueName.Infer]: InferProcessor,
  [QueueName.Aggregate]: AggregateProcessor,
  [QueueName.TrainShard]: TrainShardProcessor,
  [QueueName.InferShard]: InferShardProcessor,
  [QueueName.Datasets]: ProfileDatasetProcessor,
};

/** Only the processors of WORKER_QUEUES are instantiated, so a worker consumes only those queues. */
@Module({})
export class WorkerModule {
  static forQueues(configured: QueueName[] = loadConfig().WORKER_QUEUES): DynamicModule {
    // A worker of the infer queue serves its jobs' shards too: a fleet that runs infer runs shards.
    const queues = servedQueues(configured);
    return {
      module: WorkerModule,
      imports: [
        DiscoveryModule,
        QueueModule.forRoot({ role: 'worker' }),
        StorageModule,
        ComputeModule.forRole('worker'),
      ],
      providers: [
        { provide: SERVED_QUEUES, useValue: queues },
        HandlerCheck,
        // Every worker, whatever its queues: the sweep lock makes one of them sweep at a time.
        RetentionService,
        ...queues.map((q) => PROCESSOR_OF_QUEUE[q]),
      ],
    };
  }
}
