import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { Queue, Worker } from 'bullmq';
import { CANCELLED_REASON, JobName } from '@tq/contracts';
import { readJobView, toApiState } from '@tq/queue';
import { outcomeOf } from '@tq/runtime';
import { deleteKeys } from './support/system';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const JOBS = 400;

/**
 * A view is read while workers finish jobs under it: a "completed" view must carry its result.
 * Reading the job hash before the state (the old order) showed "completed" with result null
 * whenever a job finished between the two reads.
 */
describe('job view read while jobs finish', () => {
  const prefix = `tqtest-${randomUUID().slice(0, 8)}`;
  const connection = { url: REDIS_URL };
  const queue = new Queue('train', { connection, prefix });
  let worker: Worker | undefined;
  after(async () => {
    await worker?.close();
    await queue.close();
    await deleteKeys(REDIS_URL, `${prefix}:*`);
  });

  it('never shows a completed job without its result', async () => {
    const jobs = await queue.addBulk(Array.from({ length: JOBS }, (_, n) => ({ name: 'train', data: { n } })));
    const ids = jobs.map((j) => j.id!);
    worker = new Worker('train', async (job) => ({ n: (job.data as { n: number }).n }), {
      connection,
      prefix,
      concurrency: 8,
    });
    const seen = { completed: 0, before: 0 };
    const bad: string[] = [];
    let pending = ids;
    while (pending.length > 0) {
      const views = await Promise.all(pending.map((id) => readJobView(queue, id, JobName.Train)));
      pending = pending.filter((id, i) => {
        const view = views[i];
        if (view?.state !== 'completed') {
          seen.before++;
          return true;
        }
        seen.completed++;
        if ((view.result as { n?: number } | null)?.n === undefined) bad.push(id);
        return false;
      });
    }
    assert.deepEqual(bad, [], `${bad.length} completed views without a result`);
    assert.equal(seen.completed, JOBS);
    assert.ok(seen.before > 0, 'some views were read before their job finished');
  });
});

describe('cancelled or failed', () => {
  it('is cancelled only when the reason starts with the cancel reason, not when a failure quotes it', () => {
    const cancelled = `${CANCELLED_REASON}: training stopped at epoch 3, step 7`;
    const quoting = `dataset row 3: label "${CANCELLED_REASON}" is not a class`;
    assert.deepEqual(
      [toApiState('failed', cancelled), toApiState('failed', quoting), toApiState('failed', undefined)],
      ['cancelled', 'failed', 'failed'],
    );
    assert.deepEqual([outcomeOf(cancelled), outcomeOf(quoting)], ['cancelled', 'failed']);
  });
});
