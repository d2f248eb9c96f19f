import { SingleBar, Presets } from 'cli-progress';

/** A small REST client for the demo: submit, follow progress over SSE, fetch results. */
export class DemoClient {
  /** `key`: the API key every request sends (none with AUTH=off). */
  constructor(
    readonly base: string,
    private readonly key?: string,
  ) {}

  private get auth(): Record<string, string> {
    return this.key ? { authorization: `Bearer ${this.key}` } : {};
  }

  async post<T>(path: string, body: unknown): Promise<T> {
    const res = await fetch(this.base + path, {
      method: 'POST',
      headers: { ...this.auth, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const json = (await res.json()) as T;
    if (!res.ok) throw new Error(`POST ${path} → ${res.status}: ${JSON.stringify(json)}`);
    return json;
  }

  async get<T>(path: string): Promise<T> {
    const res = await fetch(this.base + path, { headers: this.auth });
    if (!res.ok) throw new Error(`GET ${path} → ${res.status}: ${await res.text()}`);
    return (res.headers.get('content-type') ?? '').startsWith('application/json')
      ? ((await res.json()) as T)
      : ((await res.text()) as T);
  }

  /** Follows GET /v1/jobs/:id/events with a progress bar; resolves with the final job view. */
  async follow(id: string, label: string): Promise<JobView> {
    const bar = new SingleBar(
      { format: `${label.padEnd(9)} [{bar}] {percentage}% {detail}`, hideCursor: true },
      Presets.shades_classic,
    );
    bar.start(100, 0, { detail: '' });
    const res = await fetch(`${this.base}/v1/jobs/${id}/events`, {
      headers: { ...this.auth, accept: 'text/event-stream' },
    });
    const decoder = new TextDecoder();
    let buffer = '';
    let last: JobView | undefined;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const event = parseEvent(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (event.type === 'progress') bar.update(Number(event.data.percent ?? 0), { detail: describe(event.data) });
        if (event.type === 'job') last = event.data as unknown as JobView;
      }
    }
    bar.update(last?.state === 'completed' ? 100 : bar.getProgress() * 100, { detail: last?.state ?? '' });
    bar.stop();
    if (!last) throw new Error(`no events for job ${id}`);
    return last;
  }
}

export interface JobView {
  id: string;
  state: string;
  result: Record<string, unknown> | null;
  error: string | null;
  progress: unknown;
}

function parseEvent(raw: string): { type: string; data: Record<string, unknown> } {
  let type = 'message';
  let data = '';
  for (const line of raw.split('\n')) {
    if (line.startsWith('event:')) type = line.slice(6).trim();
    else if (line.startsWith('data:')) data += line.slice(5).trim();
  }
  return { type, data: data ? (JSON.parse(data) as Record<string, unknown>) : {} };
}

function describe(p: Record<string, unknown>): string {
  const parts = [
    p.stage,
    typeof p.epoch === 'number' ? `epoch ${p.epoch}/${Number(p.epochs)}` : undefined,
    typeof p.loss === 'number' ? `loss ${p.loss.toFixed(4)}` : undefined,
    typeof p.samplesPerSec === 'number' ? `${Math.round(p.samplesPerSec)} samples/s` : undefined,
    typeof p.rows === 'number' ? `${p.rows} rows` : undefined,
  ];
  return parts.filter(Boolean).join(', ');
}
