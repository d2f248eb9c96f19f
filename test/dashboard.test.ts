import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ALL_QUEUES } from '@tq/contracts';
import { TestSystem } from './support/system';
import { irisTrain } from './support/iris-train';

const IRIS_TRAIN = irisTrain({ epochs: 2, batchSize: 32 });

/** What the API's Content-Security-Policy refused on a page (Chromium reports each on the console). */
function cspViolations(page: Page): string[] {
  const seen: string[] = [];
  page.on('console', (msg) => {
    if (/Content Security Policy/i.test(msg.text())) seen.push(msg.text());
  });
  page.on('pageerror', (err) => seen.push(`page error: ${err.message}`));
  return seen;
}

/**
 * bull-board and Swagger UI in a real headless Chromium, under the API's security headers: every
 * queue is listed and a completed job shows up; the docs list the routes; the CSP refuses nothing.
 */
describe('dashboard', () => {
  let system: TestSystem;
  let browser: Browser;
  before(async () => {
    system = await TestSystem.start({ workers: 1 });
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      // The network here is closed: without these flags Chromium keeps dialling out at start.
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });
  after(async () => {
    await browser?.close();
    await system.stop();
  });

  it('lists every queue and a completed train job', async () => {
    const { body } = await system.request('POST', '/v1/jobs/train', IRIS_TRAIN);
    assert.equal((await system.waitForJob(body.id)).state, 'completed');
    // A browser logs in with Basic: any user name, the admin key as the password.
    const page = await browser.newPage({ httpCredentials: { username: 'admin', password: system.adminKey! } });
    const violations = cspViolations(page);
    await page.goto(`${system.url}/admin/queues`);
    for (const queue of ALL_QUEUES) await page.getByText(queue, { exact: true }).first().waitFor({ timeout: 15_000 });
    await page.goto(`${system.url}/admin/queues/queue/train?status=completed`);
    await page.getByText(body.id).first().waitFor({ timeout: 15_000 });
    await page.screenshot({ path: join(tmpdir(), 'tq-dashboard.png') });
    await page.close();
    assert.deepEqual(violations, []);
  });

  it('shows the OpenAPI document in Swagger UI at /docs', async () => {
    const page = await browser.newPage({ httpCredentials: { username: 'viewer', password: system.adminKey! } });
    const violations = cspViolations(page);
    await page.goto(`${system.url}/docs`);
    await page.getByText('/v1/jobs/train', { exact: true }).first().waitFor({ timeout: 15_000 });
    await page.getByText('/v1/models/{name}/versions/{version}/predict', { exact: true }).first().waitFor();
    await page.close();
    assert.deepEqual(violations, []);
  });
});
