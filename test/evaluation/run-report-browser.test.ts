// The run report as a browser shows it: a report rendered from a small run folder (real files)
// is opened in headless Chromium (the browser of the @sparticuz/chromium dev dependency, driven by
// puppeteer-core); the screenshot is not blank, and every chart is there as SVG with a size.
// Without a browser that starts the test is skipped, or fails with DOCTOR_AGENT_REQUIRE_BROWSER=1 (CI).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PNG } from 'pngjs';
import type { Browser } from 'puppeteer-core';
import { writeRunReport } from '../../runtime/run-report.ts';
import { writeFixtureRun } from '../helpers/run-fixture.ts';

const CHARTS = [
  'chart-stage-accuracy', 'chart-stage-gain', 'chart-sft-loss', 'chart-sft-lr', 'chart-grpo-reward_mean', 'chart-grpo-accuracy',
  'chart-grpo-format_rate', 'chart-grpo-kl', 'chart-grpo-response_length', 'chart-grpo-clip_frac',
];

async function launch(t: TestContext): Promise<Browser | undefined> {
  try {
    const chromium = (await import('@sparticuz/chromium')).default;
    const puppeteer = (await import('puppeteer-core')).default;
    // The package ships the browser compressed; the first call unpacks it into the temp folder.
    const executablePath = process.env.DOCTOR_AGENT_CHROMIUM || (await chromium.executablePath());
    return await puppeteer.launch({ executablePath, args: chromium.args, headless: true });
  } catch (err) {
    const why = `no headless Chromium could be started: ${(err as Error).message.split('\n')[0]}`;
    if (process.env.DOCTOR_AGENT_REQUIRE_BROWSER === '1') {
      throw new Error(`${why}\n  npm ci installs it (the @sparticuz/chromium dev dependency); DOCTOR_AGENT_CHROMIUM=PATH names another Chromium`);
    }
    t.skip(why);
    return undefined;
  }
}

test('report.html in headless Chromium: not blank, every chart drawn as SVG', { timeout: 180_000 }, async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'run-report-browser-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const store = writeFixtureRun(root, 'r1');
  const file = await writeRunReport(store, 'r1');

  const browser = await launch(t);
  if (!browser) return;
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    // Nothing outside the page's folder may be asked for (no scripts, no network).
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
    assert.deepEqual(requests, [pathToFileURL(file).href]);

    const charts = await page.evaluate(() =>
      Array.from(document.querySelectorAll('figure.chart')).map((f) => {
        const svg = f.querySelector('svg');
        const box = svg?.getBoundingClientRect();
        return { id: f.id, width: box?.width ?? 0, height: box?.height ?? 0, marks: svg?.querySelectorAll('path, line, rect').length ?? 0 };
      }));
    assert.deepEqual(charts.map((c) => c.id).sort(), [...CHARTS].sort());
    for (const c of charts) assert.ok(c.width > 100 && c.height > 100 && c.marks > 3, `${c.id} drawn: ${JSON.stringify(c)}`);
    assert.equal(await page.evaluate(() => document.scripts.length), 0);

    const png = PNG.sync.read(Buffer.from(await page.screenshot({ type: 'png', fullPage: true })));
    let ink = 0;
    let chartBlue = 0;
    for (let i = 0; i < png.data.length; i += 4) {
      const [r, g, b] = [png.data[i], png.data[i + 1], png.data[i + 2]];
      if (r < 240 || g < 240 || b < 240) ink++;
      // The lines and points of the charts (#4c78a8).
      if (Math.abs(r - 0x4c) < 24 && Math.abs(g - 0x78) < 24 && Math.abs(b - 0xa8) < 24) chartBlue++;
    }
    const pixels = png.width * png.height;
    assert.ok(png.width >= 1280 && png.height > 900, `a full page: ${png.width}x${png.height}`);
    assert.ok(ink / pixels > 0.02, `not blank: ${ink} of ${pixels} pixels are not white`);
    assert.ok(chartBlue > 500, `the charts' lines are drawn: ${chartBlue} pixels of their colour`);
  } finally {
    await browser.close();
  }
});
