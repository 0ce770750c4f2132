import { createHash } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { promises as fsp } from 'node:fs';
import { BIN, lbuild, removeDir, tempDir } from './helpers/cli.js';
import { assertOneLineFailure } from './helpers/hostile.js';

// issue 22.6: a hostile registry (a small server this test runs on 127.0.0.1: it is the hostile
// peer itself) cannot make lbuild read forever, fill the disk or hang

let dir: string;
let server: http.Server;
let host = '';
const sockets = new Set<import('node:net').Socket>();
const configBody = Buffer.from('{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}');
const oneLayerConfig = Buffer.from(`{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:${'cd'.repeat(32)}"]}}`);
const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const manifestFor = (configDigest: string, size: number): Buffer =>
  Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size }, layers: [] }));

before(async () => {
  dir = tempDir();
  server = http.createServer((req, res) => {
    const url = req.url ?? '';
    if (url === '/v2/') return res.writeHead(200).end('{}');
    if (url.startsWith('/v2/endless/manifests/')) {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const pump = (): void => {
        while (res.write(chunk)) if (res.destroyed) return;
        res.once('drain', pump);
      };
      pump();
      return;
    }
    if (url.startsWith('/v2/silent/')) return; // never answers
    if (url.startsWith('/v2/stall/manifests/')) {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
      res.write('{"schema');
      return; // and then nothing
    }
    if (url.startsWith('/v2/bigconfig/manifests/')) {
      // the descriptor says the config has its real size; the blob endpoint sends far more
      return res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(manifestFor(sha(configBody), configBody.length));
    }
    if (url.startsWith('/v2/bigconfig/blobs/')) {
      res.writeHead(200);
      res.write(configBody);
      res.end(Buffer.alloc(1 << 20, 0x20));
      return;
    }
    if (url.startsWith('/v2/slowlayer/manifests/')) {
      const m = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(oneLayerConfig), size: oneLayerConfig.length }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${'ab'.repeat(32)}`, size: 10 << 20 }] };
      return res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(JSON.stringify(m));
    }
    if (url.startsWith('/v2/slowlayer/blobs/sha256:ab')) {
      // a megabyte, then a trickle: the pull is busy writing its temp blob when it is stopped
      res.writeHead(200, { 'content-length': String(10 << 20) });
      res.write(Buffer.alloc(1 << 20));
      const t = setInterval(() => (res.destroyed ? clearInterval(t) : res.write(Buffer.alloc(1))), 200);
      return;
    }
    if (url.startsWith('/v2/slowlayer/blobs/')) return res.writeHead(200).end(oneLayerConfig);
    res.writeHead(404).end();
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await removeDir(dir);
});

const env = { LBUILD_REGISTRY_TIMEOUT_MS: '1000' };
const root = (): string => path.join(dir, 'store');

test('an endless manifest is refused after 4 MiB', { timeout: 60_000 }, async () => {
  assertOneLineFailure(await lbuild(root(), ['pull', `${host}/endless:1`], { env }), /manifest of .*endless.*: the registry sent more than 4194304 bytes/);
});

test('a server that never answers, and one that stalls mid-body, are given up on', { timeout: 60_000 }, async () => {
  assertOneLineFailure(await lbuild(root(), ['pull', `${host}/silent:1`], { env }), /cannot connect|no response within 1 s/);
  assertOneLineFailure(await lbuild(root(), ['pull', `${host}/stall:1`], { env }), /no data for 1 s/);
});

test('a blob longer than its descriptor says is refused, not read to the end', { timeout: 60_000 }, async () => {
  assertOneLineFailure(await lbuild(root(), ['pull', `${host}/bigconfig:1`], { env }), /the registry sent more than \d+ bytes/);
});

test('22.8: SIGTERM stops a pull at once and leaves no temp blob', { timeout: 60_000 }, async () => {
  const store = path.join(dir, 'sig-store');
  const child = execa(process.execPath, [BIN, '--root', store, 'pull', `${host}/slowlayer:1`], { reject: false });
  const tmp = path.join(store, 'tmp');
  for (let i = 0; i < 100 && (await fsp.readdir(tmp).catch(() => [])).length === 0; i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok((await fsp.readdir(tmp)).length > 0, 'the pull is writing a temp blob');
  child.kill('SIGTERM');
  const r = await child;
  assert.equal(r.exitCode, 143, String(r.stderr));
  assert.match(String(r.stderr), /lbuild: SIGTERM: stopping the pull/);
  assert.deepEqual(await fsp.readdir(tmp), []);
});
