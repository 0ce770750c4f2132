import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { storeFixture } from './helpers/busybox.js';
import { lbuild, lbuildOk, run } from './helpers/cli.js';
import { writeContext } from './helpers/context.js';

// issue 15.6: ADD <http URL>, keyed by content, --checksum verified, Last-Modified as mtime

let dir: string;
let root: string;
storeFixture((d, r) => {
  dir = d;
  root = r;
});

/** A small HTTP server on 127.0.0.1 whose file the test changes; it answers If-None-Match. */
let body = 'version one\n';
let requests = 0;
let notModified = 0;
let server: http.Server;
let base = '';
const etag = (): string => `"${createHash('sha256').update(body).digest('hex').slice(0, 16)}"`;
before(async () => {
  server = http.createServer((req, res) => {
    requests++;
    if (req.url !== '/files/tool.txt') {
      res.writeHead(404).end();
      return;
    }
    if (req.headers['if-none-match'] === etag()) {
      notModified++;
      res.writeHead(304).end();
      return;
    }
    res.writeHead(200, { etag: etag(), 'last-modified': 'Wed, 21 Oct 2015 07:28:00 GMT', 'content-type': 'text/plain' }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

interface Report {
  steps: { cache: string; reason?: string }[];
}
async function build(ctx: string): Promise<Report> {
  const rep = path.join(dir, `url-${Math.random()}.json`);
  await lbuildOk(root, ['build', '-t', 'url:1', '--report', rep, ctx]);
  return JSON.parse(await fsp.readFile(rep, 'utf8')) as Report;
}

test('ADD of an http URL: named after the URL, 0600, mtime from Last-Modified; keyed by its content', async () => {
  const ctx = await writeContext(path.join(dir, 'url'), { Dockerfile: `FROM busybox\nADD ${base}/files/tool.txt /opt/\nADD --chmod=0755 ${base}/files/tool.txt /bin/tool\n` });
  const first = await build(ctx);
  assert.deepEqual(first.steps.map((s) => s.cache), ['miss', 'miss']);
  const out = await lbuildOk(root, ['run', '--rm', 'url:1', 'sh', '-c', 'cat /opt/tool.txt; stat -c "%a %u %Y" /opt/tool.txt /bin/tool']);
  assert.equal(out.stdout, 'version one\n600 0 1445412480\n755 0 1445412480');
  const again = await build(ctx);
  assert.deepEqual(again.steps.map((s) => s.cache), ['hit', 'hit']);
  assert.ok(notModified >= 2, 'the second build asked with the ETag and got 304');
  body = 'version two\n';
  const changed = await build(ctx);
  assert.deepEqual(changed.steps.map((s) => s.cache), ['miss', 'miss']);
  assert.equal(changed.steps[0]?.reason, `source changed: ${base}/files/tool.txt (its content)`);
  assert.equal((await lbuildOk(root, ['run', '--rm', 'url:1', 'cat', '/opt/tool.txt'])).stdout, 'version two');
  assert.ok(requests >= 6);
});

test('ADD --checksum: verified before use; a mismatch, a 404 or --checksum on a local file fail with one line', async () => {
  const good = `sha256:${createHash('sha256').update(body).digest('hex')}`;
  const ctx = await writeContext(path.join(dir, 'sum'), { 'local.txt': 'x', Dockerfile: `FROM busybox\nADD --checksum=${good} ${base}/files/tool.txt /t\n` });
  await build(ctx);
  for (const [df, re] of [
    [`FROM busybox\nADD --checksum=sha256:${'0'.repeat(64)} ${base}/files/tool.txt /t\n`, /Dockerfile:2: ADD: http:.*tool\.txt: checksum mismatch \(expected sha256:0+, got sha256:/],
    [`FROM busybox\nADD ${base}/missing /t\n`, /ADD: http:.*\/missing: HTTP 404/],
    [`FROM busybox\nADD --checksum=${good} local.txt /t\n`, /Dockerfile:2: ADD --checksum is only for http\(s\) and git sources/],
  ] as const) {
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), df);
    const r = await lbuild(root, ['build', ctx]);
    assert.equal(r.exitCode, 1, df);
    assert.match(r.stderr, re);
  }
});

test('ADD --unpack=false copies a local archive as a file', async () => {
  const ctx = await writeContext(path.join(dir, 'unpack'), { 'in/a.txt': 'a', Dockerfile: 'FROM busybox\nADD --unpack=false a.tar /keep/\nADD a.tar /x/\n' });
  assert.equal((await run('tar', ['-cf', path.join(ctx, 'a.tar'), '-C', path.join(ctx, 'in'), 'a.txt'])).exitCode, 0);
  await build(ctx);
  assert.equal((await lbuildOk(root, ['run', '--rm', 'url:1', 'sh', '-c', 'ls /keep /x'])).stdout, '/keep:\na.tar\n\n/x:\na.txt');
});
