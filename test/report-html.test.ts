import assert from 'node:assert/strict';
import { execa } from 'execa';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { importBusybox } from './helpers/busybox.js';
import { BIN, lbuildOk, removeDir, tempDir } from './helpers/cli.js';
import { writeContext } from './helpers/context.js';

let dir: string;
let root: string;
let ctx: string;

const DOCKERFILE = [
  'FROM busybox AS build',
  'RUN echo compiling > /artifact',
  'COPY app.txt /src/app.txt',
  'FROM busybox',
  'COPY --from=build /artifact /artifact',
  'RUN head -c 200000 /dev/urandom > /tmp/junk',
  'RUN rm /tmp/junk',
].join('\n');

/** Debian's chromium, headless, with a fresh profile and no background traffic. */
async function chromium(args: string[]): Promise<string> {
  const profile = await fsp.mkdtemp(path.join(dir, 'chrome-'));
  const r = await execa(
    'chromium',
    ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`, ...args],
    { reject: false, timeout: 90_000, stdin: 'ignore' },
  );
  assert.equal(r.exitCode, 0, `chromium failed: ${r.stderr}`);
  return String(r.stdout);
}

before(async () => {
  dir = tempDir();
  root = path.join(dir, 'store');
  await importBusybox(root, 'busybox:latest');
  ctx = await writeContext(path.join(dir, 'ctx'), { Dockerfile: DOCKERFILE, 'app.txt': 'v1\n' });
  await lbuildOk(root, ['build', '-t', 'two:1', ctx]);
  await fsp.writeFile(path.join(ctx, 'app.txt'), 'v2\n'); // the second build: that COPY misses; /artifact is unchanged, so the final stage hits
});
after(async () => {
  await removeDir(dir);
});

test('HTML report of a real two-stage build, rendered in headless Chromium', async () => {
  const reportJson = path.join(dir, 'r.json');
  const html = path.join(dir, 'report.html');
  await lbuildOk(root, ['build', '-t', 'two:1', '--report', reportJson, '--report-html', html, ctx]);
  const viaCommand = path.join(dir, 'report2.html');
  await lbuildOk(root, ['report', 'html', '--last', '-o', viaCommand]);
  const text = await fsp.readFile(html, 'utf8');
  assert.doesNotMatch(text, /<script|<link|src="http|url\(http/i, 'self-contained: no scripts or fetches');
  assert.equal((await fsp.readFile(viaCommand, 'utf8')).replace(/Finished<\/dt><dd>[^<]*/, ''), text.replace(/Finished<\/dt><dd>[^<]*/, ''));

  const dom = await chromium(['--dump-dom', `file://${html}`]);
  const report = JSON.parse(await fsp.readFile(reportJson, 'utf8')) as { steps: { stage: string; index: number; cache: string }[] };
  const bars = [...dom.matchAll(/<div class="step (hit|miss|failed)" data-stage="([^"]+)" data-index="(\d+)"/g)].map((m) => [m[2], Number(m[3]), m[1]]);
  assert.deepEqual(bars, report.steps.map((s) => [s.stage, s.index, s.cache]), 'one bar per step, classed by its cache result');
  assert.deepEqual(bars.map((b) => b[2]), ['hit', 'miss', 'hit', 'hit', 'hit']);
  assert.match(dom, /title="miss: source changed: app.txt/);

  const history = JSON.parse((await lbuildOk(root, ['history', 'two:1', '--format', 'json'])).stdout) as { size: number; emptyLayer: boolean }[];
  const historySizes = history.filter((h) => !h.emptyLayer).map((h) => h.size).reverse();
  const tableSizes = [...dom.matchAll(/<td class="num size-bytes">(\d+)<\/td>/g)].map((m) => Number(m[1]));
  assert.deepEqual(tableSizes, historySizes, 'the layer table sizes are the history sizes');
  // sizes are the files' (Docker's): the junk is all of its layer
  assert.match(dom, /<span class="waste" style="width:100\.00%">/, 'the deleted junk shows as a wasted share');

  const png = path.join(dir, 'report.png');
  await chromium(['--window-size=1100,1000', `--screenshot=${png}`, `file://${html}`]);
  const head = (await fsp.readFile(png)).subarray(0, 8);
  assert.deepEqual([...head], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG screenshot');
  assert.ok((await fsp.stat(png)).size > 20_000);
  // narrow window: still renders
  await chromium(['--window-size=420,900', `--screenshot=${path.join(dir, 'narrow.png')}`, `file://${html}`]);
});

test('a failed build still gets a report whose last step is marked failed', async () => {
  const bad = await writeContext(path.join(dir, 'bad'), { Dockerfile: 'FROM busybox\nRUN echo ok > /ok\nRUN exit 5\n' });
  const html = path.join(dir, 'failed.html');
  const json = path.join(dir, 'failed.json');
  const r = await execa(process.execPath, [BIN, '--root', root, 'build', '--report', json, '--report-html', html, bad], { reject: false });
  assert.equal(r.exitCode, 1);
  const rep = JSON.parse(await fsp.readFile(json, 'utf8')) as { failed: boolean; steps: { status?: string; reason?: string }[] };
  assert.equal(rep.failed, true);
  assert.equal(rep.steps.at(-1)?.status, 'failed');
  assert.match(rep.steps.at(-1)?.reason ?? '', /exited with code 5/);
  assert.match(await fsp.readFile(html, 'utf8'), /<div class="step failed"/);
});
