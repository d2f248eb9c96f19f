import { Inject, Logger, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import { loadConfig, ortAllowSpinning } from '@tq/config';
import { InferenceEngine, initBackend, resolveExecutionProviders, type BackendInfo } from '@tq/ml';
import { ModelRegistry } from '@tq/storage';

export const BACKEND = Symbol('BACKEND');
export const InjectBackend = () => Inject(BACKEND);

/**
 * Chooses the tfjs backend once at start (logged, shown in /health and job results) and owns the
 * model cache, for a process of `role` (onnxruntime's threads spin in a worker: ortAllowSpinning).
 */
function computeProviders(role: 'api' | 'worker') {
  return [
    {
      provide: BACKEND,
      useFactory: async (): Promise<BackendInfo> => {
        const info = await initBackend(loadConfig().TQ_BACKEND);
        const logger = new Logger('Compute');
        logger.log(
          `tfjs backend: ${info.name} (${info.provider}${info.gpu ? ', GPU' : ''}); fast kernels: ${info.fastKernels.join(', ') || 'none'}`,
        );
        // Absent optional packages are normal (a broken install is warned about by initBackend itself).
        if (info.skipped.length)
          logger.log(`not used: ${info.skipped.map((s) => `${s.provider} (${s.reason})`).join('; ')}`);
        return info;
      },
    },
    {
      provide: InferenceEngine,
      useFactory: (registry: ModelRegistry) => {
        const config = loadConfig();
        return new InferenceEngine({
          registry,
          cacheSize: config.MODEL_CACHE_SIZE,
          cacheBytes: config.MODEL_CACHE_BYTES,
          intraOpNumThreads: config.ORT_INTRA_OP_THREADS,
          allowSpinning: ortAllowSpinning(config, role),
          executionProviders: resolveExecutionProviders(config.ORT_EXECUTION_PROVIDERS),
        });
      },
      inject: [ModelRegistry, BACKEND],
    },
  ];
}

@Module({})
export class ComputeModule implements OnApplicationShutdown {
  static forRole(role: 'api' | 'worker'): DynamicModule {
    return {
      module: ComputeModule,
      global: true,
      providers: computeProviders(role),
      exports: [BACKEND, InferenceEngine],
    };
  }

  constructor(@Inject(InferenceEngine) private readonly engine: InferenceEngine) {}

  async onApplicationShutdown(): Promise<void> {
    await this.engine.close();
  }
}
