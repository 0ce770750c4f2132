import assert from 'node:assert/strict';
import { execa } from 'execa';
import { promises as fsp } from 'node:fs';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { storeFixture } from './helpers/busybox.js';
import { BIN, type Result, run } from './helpers/cli.js';
import { writeContext } from './helpers/context.js';

// bin/lbuild.js starts Node without NODE_EXTRA_CA_CERTS (its parse is most of a start-up on some
// machines) and trusts the file's CAs when a request needs TLS: an https server whose CA only
// that file holds is reached when the variable names it, and refused when it does not.

let dir: string;
let root: string;
storeFixture((d, r) => {
  dir = d;
  root = r;
});

let server: https.Server;
let url = '';
let caFile = '';
const BODY = 'served over TLS\n';

async function openssl(args: string[]): Promise<void> {
  const r = await run('openssl', args);
  assert.equal(r.exitCode, 0, `openssl ${args[0]}: ${r.stderr}`);
}

/** The CA, the server's certificate and the https server, made once (in the fixture's dir). */
let served: Promise<void> | undefined;
const serve = (): Promise<void> => (served ??= startServer());
async function startServer(): Promise<void> {
  const pki = path.join(dir, 'pki');
  await fsp.mkdir(pki, { recursive: true });
  const p = (f: string): string => path.join(pki, f);
  caFile = p('ca.pem');
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=lbuild test CA', '-keyout', p('ca.key'), '-out', caFile]);
  await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', p('server.key'), '-out', p('server.csr')]);
  await fsp.writeFile(p('ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  await openssl(['x509', '-req', '-in', p('server.csr'), '-CA', caFile, '-CAkey', p('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', p('ext.cnf'), '-out', p('server.pem')]);
  server = https.createServer({ key: await fsp.readFile(p('server.key')), cert: await fsp.readFile(p('server.pem')) }, (req, res) => {
    if (req.url === '/tool.txt') res.writeHead(200, { 'content-type': 'text/plain' }).end(BODY);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/tool.txt`;
}
after(async () => {
  if (served) await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** Run lbuild as a user's shell does: the file itself, so that its shebang applies. */
async function direct(args: string[], extraCa: string | undefined, viaNode = false): Promise<Result> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== 'NODE_EXTRA_CA_CERTS') env[k] = v;
  if (extraCa !== undefined) env.NODE_EXTRA_CA_CERTS = extraCa;
  const [cmd, argv] = viaNode ? [process.execPath, [BIN, '--root', root, ...args]] : [BIN, ['--root', root, ...args]];
  const r = await execa(cmd, argv, { reject: false, env, extendEnv: false, stdin: 'ignore' });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

async function context(name: string): Promise<string> {
  await serve();
  return writeContext(path.join(dir, name), { Dockerfile: `FROM busybox\nADD ${url} /opt/tool.txt\nRUN cat /opt/tool.txt > /opt/copy.txt\n` });
}

test('a deferred NODE_EXTRA_CA_CERTS is trusted for TLS: ADD of an https URL whose CA only that file holds', async () => {
  const ctx = await context('tls-ok');
  const r = await direct(['build', '--progress', 'plain', '--no-cache', '-t', 'tls:1', ctx], caFile);
  assert.equal(r.exitCode, 0, r.stderr);
  const out = await direct(['run', '--rm', 'tls:1', 'cat', '/opt/copy.txt'], undefined);
  assert.equal(out.exitCode, 0, out.stderr);
  assert.equal(out.stdout, BODY.trimEnd());
});

test('without the CA file the https server is refused, with a one-line reason naming the URL', async () => {
  const ctx = await context('tls-refused');
  const r = await direct(['build', '--progress', 'plain', '--no-cache', '-t', 'tls:2', ctx], undefined);
  assert.notEqual(r.exitCode, 0);
  assert.ok(r.stderr.includes(`cannot fetch ${url}`), r.stderr);
  assert.match(r.stderr, /certificate/i);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
});

test('started by node itself (no shebang), the CA file is loaded by Node as usual and trusted', async () => {
  const ctx = await context('tls-node');
  const r = await direct(['build', '--progress', 'plain', '--no-cache', '-t', 'tls:3', ctx], caFile, true);
  assert.equal(r.exitCode, 0, r.stderr);
});

test('an unreadable CA file: a warning naming it, and the bundled roots only (as Node does)', async () => {
  const ctx = await context('tls-missing');
  const missing = path.join(dir, 'no-such-ca.pem');
  const r = await direct(['build', '--progress', 'plain', '--no-cache', '-t', 'tls:4', ctx], missing);
  assert.notEqual(r.exitCode, 0);
  assert.ok(r.stderr.includes(`Ignoring extra certs from \`${missing}\``), r.stderr);
  assert.match(r.stderr, /certificate/i);
});

test('a command that makes no request does not read the CA file at all when started by its shebang', async () => {
  const missing = path.join(dir, 'never-read-ca.pem');
  const viaShebang = await direct(['images'], missing);
  assert.equal(viaShebang.exitCode, 0, viaShebang.stderr);
  assert.doesNotMatch(viaShebang.stderr, /Ignoring extra certs/);
  // the control: Node itself reads it at start-up, and warns
  const viaNode = await direct(['images'], missing, true);
  assert.equal(viaNode.exitCode, 0, viaNode.stderr);
  assert.match(viaNode.stderr, /Ignoring extra certs from `.*never-read-ca\.pem`/);
});
