import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { storeFixture } from '../helpers/busybox.js';
import { lbuild, lbuildOk, run } from '../helpers/cli.js';
import { writeContext } from '../helpers/context.js';

// issue 18.1: RUN's default network is a private namespace (slirp4netns), not the host's

let dir: string;
let root: string;
storeFixture((d, r) => {
  dir = d;
  root = r;
});

/** An HTTP server answering `lbuild-<name>` on every request. */
async function serve(host: string, name: string): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((_req, res) => res.end(`lbuild-${name}\n`));
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** The host's first non-loopback IPv4 address: reached from a private network through NAT. */
function hostAddress(): string {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  throw new Error('this machine has no non-loopback IPv4 address');
}

let loop: Awaited<ReturnType<typeof serve>>;
let lan: Awaited<ReturnType<typeof serve>>;
const lanIp = hostAddress();
before(async () => {
  loop = await serve('127.0.0.1', 'loopback');
  lan = await serve(lanIp, 'lan');
});
after(async () => {
  await loop.close();
  await lan.close();
});

/** A shell line that asks ip:port over HTTP and prints the answer's body line, or `unreachable`. */
function ask(ip: string, port: number): string {
  return `(printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${ip} ${port} | grep lbuild- || echo unreachable)`;
}

async function buildAndRead(name: string, script: string, flags: string[] = []): Promise<string> {
  const ctx = await writeContext(path.join(dir, name), { Dockerfile: `FROM busybox\nRUN { ${script}; } > /out.txt\n` });
  await lbuildOk(root, ['build', '--no-cache', '-t', `${name}:1`, ...flags, ctx]);
  return (await lbuildOk(root, ['run', '--network', 'none', `${name}:1`, 'cat', '/out.txt'])).stdout;
}

test('18.1: a default-network RUN cannot reach the host\'s loopback, but reaches the host from outside through NAT', async () => {
  const out = await buildAndRead('private', [
    `echo "loopback $${ask('127.0.0.1', loop.port)}"`,
    // slirp's alias for the host's loopback is closed too
    `echo "gateway $${ask('10.0.2.2', loop.port)}"`,
    `echo "lan $${ask(lanIp, lan.port)}"`,
    'echo "iface $(ip -4 addr show tap0 | grep -o "inet [0-9.]*")"',
  ].join('; '));
  assert.match(out, /^loopback unreachable$/m);
  assert.match(out, /^gateway unreachable$/m);
  assert.match(out, /^lan lbuild-lan$/m);
  assert.match(out, /^iface inet 10\.0\.2\.100$/m);
});

test('18.1: --network host reaches the host\'s loopback; --network none reaches nothing', async () => {
  const host = await buildAndRead('hostnet', `echo "loopback $${ask('127.0.0.1', loop.port)}"`, ['--network', 'host']);
  assert.match(host, /^loopback lbuild-loopback$/m);
  const none = await buildAndRead('nonet', `echo "lan $${ask(lanIp, lan.port)}"`, ['--network', 'none']);
  assert.match(none, /^lan unreachable$/m);
  // RUN --network=host in the Dockerfile opts in for one step
  const ctx = await writeContext(path.join(dir, 'flagnet'), {
    Dockerfile: `FROM busybox\nRUN --network=host echo "loopback $${ask('127.0.0.1', loop.port)}" > /a\nRUN echo "loopback $${ask('127.0.0.1', loop.port)}" > /b\n`,
  });
  await lbuildOk(root, ['build', '-t', 'flagnet:1', ctx]);
  const both = (await lbuildOk(root, ['run', 'flagnet:1', 'cat', '/a', '/b'])).stdout;
  assert.equal(both, 'loopback lbuild-loopback\nloopback unreachable');
});

test('18.1: lbuild run gets the private network too, and --add-host lines in /etc/hosts', async () => {
  const r = await lbuild(root, ['run', '--add-host', 'db.internal:10.9.8.7', 'busybox', 'sh', '-c', `${ask('127.0.0.1', loop.port)}; ${ask(lanIp, lan.port)}; grep db.internal /etc/hosts`]);
  assert.equal(r.exitCode, 0, r.stderr);
  assert.equal(r.stdout, `unreachable\nlbuild-lan\n10.9.8.7\tdb.internal`);
  const bad = await lbuild(root, ['run', '--add-host', 'db.internal:not-an-ip', 'busybox', 'true']);
  assert.equal(bad.exitCode, 2);
  assert.match(bad.stderr, /^lbuild: --add-host "db\.internal:not-an-ip": "not-an-ip" is not an IP address$/);
});

test('18.1: --add-host is part of a RUN\'s key, and a change is named', async () => {
  const ctx = await writeContext(path.join(dir, 'hosts'), { Dockerfile: 'FROM busybox\nRUN grep api /etc/hosts > /h\n' });
  await lbuildOk(root, ['build', '--add-host', 'api:10.0.0.1', '-t', 'hosts:1', ctx]);
  const again = await lbuildOk(root, ['build', '--progress', 'plain', '--add-host', 'api:10.0.0.2', '-t', 'hosts:2', ctx]);
  assert.match(again.stderr, /cache miss: --add-host changed \(\["api=10\.0\.0\.1"\] → \["api=10\.0\.0\.2"\]\)/);
  assert.equal((await lbuildOk(root, ['run', 'hosts:2', 'cat', '/h'])).stdout, '10.0.0.2\tapi');
});

test('18.1: outbound access to the machine\'s Debian mirror works from a default-network RUN', async () => {
  // the mirror is the one this machine's apt uses; nothing here names a host
  const sources = (await run('sh', ['-c', 'cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null'])).stdout;
  const m = /(?:^deb\s+(?:\[[^\]]*\]\s+)?|^URIs:\s*)http:\/\/([^/\s:]+)(?::(\d+))?(\/\S*)?/m.exec(sources);
  assert.ok(m, `no http:// Debian mirror in the host's apt sources:\n${sources}`);
  const [, mirror, port = '80', base = '/'] = m;
  // busybox's nc does not resolve names; its nslookup asks the resolver in the RUN's resolv.conf
  const out = await buildAndRead('mirror', [
    `ip=$(nslookup ${mirror} | sed -n 's/^Address: *\\([0-9.]*\\)$/\\1/p' | tail -1)`,
    // stdin stays open a moment: busybox's nc hangs up when it ends
    `(printf 'HEAD ${base.replace(/\/?$/, '/')} HTTP/1.1\\r\\nHost: ${mirror}\\r\\nConnection: close\\r\\n\\r\\n'; sleep 3) | nc -w 10 "$ip" ${port} | head -1`,
  ].join('; '));
  assert.match(out, /^HTTP\/1\.[01] \d{3}/);
  await fsp.rm(path.join(dir, 'mirror'), { recursive: true, force: true });
});
