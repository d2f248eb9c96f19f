import { describeIssues } from '@tq/contracts';
import { configSchema, type AppConfig } from './config.schema';

let cached: AppConfig | undefined;

/** Parses the environment once; a bad value stops start-up with the variable's name and the reason. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  if (env === process.env && cached) return cached;
  // An empty value (FOO= in an env file, ${FOO:-} in compose) means unset, not an invalid value.
  const set = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = configSchema.safeParse(set);
  if (!parsed.success) throw new Error(`Invalid configuration: ${describeIssues(parsed.error)}`);
  if (env === process.env) cached = parsed.data;
  return parsed.data;
}
