import { spawnSync } from 'node:child_process';

/** The value of one series in a Prometheus text exposition, or undefined when it has no sample. */
export function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** The real promtool: '' when it exits 0 with no lint problems (it prints one line per problem). */
export function promtoolCheck(text: string): string {
  const run = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (run.error) throw run.error;
  return `${run.status === 0 ? '' : `exit ${run.status}: `}${run.stdout}${run.stderr}`.trim();
}
