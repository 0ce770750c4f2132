import { createHash } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { lbuild, removeDir, tempDir } from './helpers/cli.js';
import { assertOneLineFailure } from './helpers/hostile.js';

// issue 22.6: a hostile registry (a small server this test runs on 127.0.0.1: it is the hostile
// peer itself) cannot make lbuild read forever, fill the disk or hang

let dir: string;
let server: http.Server;
let host = '';
const sockets = new Set<import('node:net').Socket>();
const configBody = Buffer.from('{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}');
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
