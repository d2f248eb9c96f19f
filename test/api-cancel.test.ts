import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Redis from 'ioredis';
import { TestSystem } from './support/system';
import { irisTrain } from './support/iris-train';

const TRAIN = irisTrain({ epochs: 1 });

interface SseEvent {
  event: string;
  data: any;
}

/** Reads a Server-Sent Events response to its end; `onEvent` runs for each event as it arrives. */
async function readSse(res: Response, onEvent: (e: SseEvent) => Promise<void> | void): Promise<SseEvent[]> {
  const events: SseEvent[] = [];
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of res.body!) {
    buffer += decoder.decode(chunk as Uint8Array, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const field = (name: string) =>
        block
          .split('\n')
          .find((l) => l.startsWith(`${name}:`))
          ?.slice(name.length + 1)
          .trim();
      const e = { event: field('event') ?? 'message', data: JSON.parse(field('data') ?? 'null') };
      events.push(e);
      await onEvent(e);
    }
  }
  return events;
}

/** No workers: every submitted job stays waiting until it is cancelled. */
describe('cancelling waiting jobs', () => {
  let system: TestSystem;
  let redis: Redis;
  before(async () => {
    system = await TestSystem.start({ workers: 0 });
    redis = new Redis(system.redisUrl);
  });
  after(async () => {
    redis.disconnect();
    await system.stop();
  });

  const submit = async (): Promise<string> => {
    const res = await system.request('POST', '/v1/jobs/train', TRAIN);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return res.body.id as string;
  };

  // A stream that never ends is the failure: the limit turns it into one instead of a hung run.
  it('ends the event stream of a waiting job with its cancelled view', { timeout: 60_000 }, async () => {
    const id = await submit();
    const res = await system.fetch(`/v1/jobs/${id}/events`);
    assert.equal(res.status, 200);
    const events = await readSse(res, async (e) => {
      // The first event (sent once the stream listens) is the waiting view: cancel then.
      if (e.data?.state === 'waiting') assert.equal((await system.request('DELETE', `/v1/jobs/${id}`)).status, 200);
    });
    assert.deepEqual(
      events.map((e) => [e.event, e.data.state]),
      [
        ['job', 'waiting'],
        ['job', 'cancelled'],
      ],
    );
  });

  it('keeps a waiting job queued when its tombstone cannot be written', async () => {
    const id = await submit();
    // The tombstone index of train jobs holding a string: the tombstone write fails (WRONGTYPE).
    const index = `${system.prefix}:tq-cancelled-index:train`;
    const saved = await redis.dumpBuffer(index);
    await redis.set(index, 'not a sorted set');
    try {
      assert.equal((await system.request('DELETE', `/v1/jobs/${id}`)).status, 500);
      assert.equal((await system.request('GET', `/v1/jobs/${id}`)).body.state, 'waiting', 'the job is not lost');
    } finally {
      await redis.del(index);
      if (saved) await redis.restore(index, 0, saved);
    }
    assert.equal((await system.request('DELETE', `/v1/jobs/${id}`)).body.state, 'cancelled');
  });

  it('lists cancelled jobs, newest first, with paging, beside the waiting ones', async () => {
    const waiting = await submit();
    const cancelled = [await submit(), await submit()];
    for (const id of cancelled) assert.equal((await system.request('DELETE', `/v1/jobs/${id}`)).status, 200);
    const ids = async (query: string) =>
      ((await system.request('GET', `/v1/jobs?${query}`)).body.items as { id: string }[]).map((v) => v.id);
    const allCancelled = await ids('state=cancelled&pageSize=200');
    assert.deepEqual(allCancelled.slice(0, 2), [cancelled[1], cancelled[0]]);
    assert.equal(allCancelled.length, 4, 'and the two of the tests above');
    assert.deepEqual(await ids('state=cancelled&pageSize=1&page=2'), [cancelled[0]]);
    assert.deepEqual((await ids('pageSize=3')).slice(0, 3), [cancelled[1], cancelled[0], waiting]);
    assert.deepEqual(await ids('state=cancelled&type=compress'), []);
    assert.ok(!(await ids('state=failed')).length, 'a cancelled job is no failure');
  });
});
