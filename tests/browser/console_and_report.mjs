// Drives headless Chromium through the console and a report (run by tests/api/browser.rs):
//   node tests/browser/console_and_report.mjs <base-url> <artifact-dir> <customers.csv>
// Posts the CSV through the console's form, watches the job's progress bar reach done, opens the
// job's report and checks that its charts are drawn and its funnel holds the job's figures.
// Fails on any console error, page error, failed request or request to another origin.
// With ICP_KEY set the service has keys: the console must ask for one (the 401 that makes it
// ask is the one error allowed), and opens the report from a blob URL fetched with the key.
// Prints one JSON line last: {"ok": …, "problems": […], "screenshots": […], …}.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [base, artifacts, csvPath] = process.argv.slice(2);
if (!base || !artifacts || !csvPath) {
  console.error('usage: console_and_report.mjs <base-url> <artifact-dir> <customers.csv>');
  process.exit(2);
}
const origin = new URL(base).origin;
const key = process.env.ICP_KEY || null;
const auth = key ? { Authorization: `Bearer ${key}` } : {};
let keyEntered = false;
const STEP_MS = 30_000;
const JOB_MS = 60_000;
mkdirSync(artifacts, { recursive: true });

const problems = [];
const summary = { ok: false, problems, screenshots: [] };

const browser = await chromium.launch({
  executablePath: process.env.ICP_CHROMIUM || '/usr/bin/chromium',
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(STEP_MS);
  // Every page of the context, the report's tab included, from its first request on.
  context.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (key && !keyEntered && m.text().includes('status of 401')) return;
    problems.push(`console error on ${m.page()?.url()}: ${m.text()}`);
  });
  context.on('weberror', (e) => problems.push(`page error: ${e.error().message}`));
  context.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  context.on('request', (r) => {
    const url = new URL(r.url());
    if (!['data:', 'blob:'].includes(url.protocol) && url.origin !== origin) {
      problems.push(`request to another origin: ${r.url()}`);
    }
  });
  // Every state a progress bar shows, in order, per job (rows are redrawn as the job moves).
  await context.addInitScript(() => {
    window.__progressSeen = {};
    const record = () => {
      for (const bar of document.querySelectorAll('progress[data-job]')) {
        const seen = (window.__progressSeen[bar.dataset.job] ||= []);
        const state = `${bar.dataset.status}:${bar.value}`;
        if (seen[seen.length - 1] !== state) seen.push(state);
      }
    };
    new MutationObserver(record).observe(document, { subtree: true, childList: true, attributes: true });
  });

  const page = await context.newPage();
  if (key) {
    // A key made while the service runs closes it within seconds: wait until it is closed.
    for (let i = 0; i < 100 && (await fetch(`${base}/v1/jobs`)).status !== 401; i += 1) {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  await page.goto(`${base}/`);
  if (key) {
    await page.locator('#key-panel').waitFor({ state: 'visible' });
    keyEntered = true;
    await page.fill('#key', key);
    await page.click('#key-form button[type=submit]');
  }
  await page.locator('#job-form').waitFor({ state: 'visible' });
  const before = await page.locator('#jobs tbody tr').count();

  await page.setInputFiles('#csv', csvPath);
  await page.fill('#options', 'min_support=0.05');
  await page.click('#post-job');
  await page.waitForFunction((n) => document.querySelectorAll('#jobs tbody tr').length > n, before);
  const id = await page.locator('#jobs tbody tr').first().getAttribute('data-job');
  summary.job = id;

  await page.waitForFunction(
    (job) => {
      const bar = document.querySelector(`progress[data-job="${job}"]`);
      return bar && ['succeeded', 'failed', 'cancelled'].includes(bar.dataset.status);
    },
    id,
    { timeout: JOB_MS },
  );
  const seen = await page.evaluate((job) => window.__progressSeen[job] || [], id);
  summary.progress = seen;
  if (seen[seen.length - 1] !== 'succeeded:100') problems.push(`the bar ended at ${seen[seen.length - 1]}`);
  if (seen.length < 2 || seen[0] === 'succeeded:100') {
    problems.push(`the bar was never seen before done: ${JSON.stringify(seen)}`);
  }
  const reportLink = page.locator(`tr[data-job="${id}"] a`, { hasText: 'report' });
  await reportLink.waitFor();
  // Export links appear once the result is read: one row per audience.
  await page.locator(`tr[data-job="${id}"] .audience`).first().waitFor();
  summary.exportLinks = await page.locator(`tr[data-job="${id}"] .audience a`).count();
  const consoleShot = join(artifacts, 'console.png');
  await page.screenshot({ path: consoleShot, fullPage: true });
  summary.screenshots.push(consoleShot);

  const [report] = await Promise.all([context.waitForEvent('page'), reportLink.click()]);
  await report.waitForLoadState('load');
  summary.reportUrl = report.url();
  if (key && !report.url().startsWith('blob:')) problems.push(`the report was not opened from a blob: ${report.url()}`);
  const charts = await report.evaluate(() =>
    [...document.querySelectorAll('svg.chart')].map((svg) => {
      const box = svg.getBoundingClientRect();
      const shapes = [...svg.querySelectorAll('rect, path')];
      const drawn = shapes.filter((s) => {
        const b = s.getBBox();
        const fill = getComputedStyle(s).fill;
        return b.width > 0 && b.height > 0 && fill !== 'none';
      });
      const bar = svg.querySelector('.bar');
      return {
        id: svg.id,
        width: box.width,
        height: box.height,
        drawn: drawn.length,
        // The page's style applied (its hash allowed by the CSP): bars are not the default black.
        barFill: bar ? getComputedStyle(bar).fill : null,
      };
    }),
  );
  summary.charts = charts;
  const expected = ['funnel-chart', 'traits-chart', 'lift-chart', 'clusters-chart', 'audiences-chart'];
  for (const name of expected) {
    const chart = charts.find((c) => c.id === name);
    if (!chart) problems.push(`${name} is not on the report`);
    else if (!(chart.width > 0 && chart.height > 0 && chart.drawn > 0)) {
      problems.push(`${name} is not drawn: ${JSON.stringify(chart)}`);
    } else if (chart.barFill !== null && ['rgb(0, 0, 0)', 'none'].includes(chart.barFill)) {
      problems.push(`${name} is not styled: ${JSON.stringify(chart)}`);
    }
  }

  const job = await (await fetch(`${base}/v1/jobs/${id}`, { headers: auth })).json();
  summary.resolution = job.resolution;
  for (const step of ['requested', 'resolved', 'persons', 'accepted']) {
    const text = await report.locator(`[data-funnel="${step}"]`).textContent();
    const shown = Number(text.replace(/[^0-9]/g, ''));
    if (shown !== job.resolution[step]) {
      problems.push(`funnel ${step}: the report shows ${text}, the job ${job.resolution[step]}`);
    }
  }
  const reportShot = join(artifacts, 'report.png');
  await report.screenshot({ path: reportShot, fullPage: true });
  summary.screenshots.push(reportShot);
  await context.close();
} catch (e) {
  problems.push(`the run stopped: ${e.stack || e}`);
} finally {
  await browser.close();
}
summary.ok = problems.length === 0;
for (const shot of summary.screenshots) console.log(`screenshot: ${shot}`);
console.log(JSON.stringify(summary));
process.exit(summary.ok ? 0 : 1);
