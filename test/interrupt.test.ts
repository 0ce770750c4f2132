import assert from 'node:assert/strict';
import { execa, type ResultPromise } from 'execa';
import { promises as fsp, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { storeFixture } from './helpers/busybox.js';
import { BIN, lbuildOk } from './helpers/cli.js';
import { mountsUnder, writeContext } from './helpers/context.js';

let dir: string;
let root: string;
storeFixture((d, r) => {
  dir = d;
  root = r;
});

/** Start a build whose RUN sleeps; resolve once the RUN has printed its marker (the sandbox is up). */
async function startSleepingBuild(name: string, mount = '', extra: string[] = [], env: Record<string, string> = {}): Promise<{ child: ResultPromise }> {
  // an unusual duration, so that no other `sleep` on the machine is taken for the sandboxed one
  const ctx = await writeContext(path.join(dir, name), { Dockerfile: `FROM busybox\nRUN ${mount} echo $((6*7))-sleeping && sleep 3607\n` });
  const child = execa(process.execPath, [BIN, '--root', root, 'build', '--progress', 'plain', ...extra, ctx], { reject: false, all: true, buffer: true, env });
  const deadline = Date.now() + 20_000;
  let seen = '';
  child.all?.on('data', (c: Buffer) => {
    seen += c.toString();
  });
  // the marker is computed by the shell, so it cannot match the echoed instruction text
  while (!seen.includes('42-sleeping')) {
    if (Date.now() > deadline) throw new Error(`the build did not start: ${seen}`);
    await sleep(50);
  }
  // wrapped: an async function would otherwise wait for the (thenable) child to finish
  return { child };
}

/** `ps` output once no `sleep 3607` is left, or after 3 s: a killed PID namespace empties asynchronously. */
async function processesAfterKill(): Promise<string> {
  const deadline = Date.now() + 3000;
  for (;;) {
    const ps = String((await execa('ps', ['-eo', 'args'], { reject: false })).stdout);
    if (!/sleep 3607/.test(ps) || Date.now() > deadline) return ps;
    await sleep(100);
  }
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  test(`${sig} stops the running step, releases every mount and exits non-zero within seconds`, async () => {
    const { child } = await startSleepingBuild(`ctx-${sig}`);
    assert.ok(mountsUnder(root).length > 0, 'the step is mounted while it runs');
    const t0 = Date.now();
    child.kill(sig);
    const r = await child;
    assert.ok(Date.now() - t0 < 5000, `stopped in ${Date.now() - t0} ms`);
    assert.notEqual(r.exitCode, 0);
    assert.deepEqual(mountsUnder(root), []);
    assert.deepEqual(await fsp.readdir(path.join(root, 'tmp')), [], 'no temp files left');
    assert.doesNotMatch(await processesAfterKill(), /sleep 3607/, 'the sandboxed process is gone');
  });
}

test('a build killed with SIGKILL leaves a stale mount that the next command cleans', async () => {
  const { child } = await startSleepingBuild('ctx-kill');
  child.kill('SIGKILL');
  await child;
  assert.ok(mountsUnder(root).length > 0, 'the killed build left its mount');
  const ctx = await writeContext(path.join(dir, 'ctx-after'), { Dockerfile: 'FROM busybox\nRUN echo fine > /fine\n' });
  await lbuildOk(root, ['build', '-t', 'after:1', ctx]);
  assert.deepEqual(mountsUnder(root), [], 'the next build released the stale mount');
  assert.deepEqual(await fsp.readdir(path.join(root, 'tmp')), []);
  assert.doesNotMatch(await processesAfterKill(), /sleep 3607/, "the killed build's container was reaped");
});

test('22.8: a secret file lives on a tmpfs of its own: a SIGKILLed build leaves it on no disk, and the next command unmounts it', async () => {
  const value = `s3cr3t-${Math.random().toString(16).slice(2)}`;
  const { child } = await startSleepingBuild('ctx-secret', '--mount=type=secret,id=tok', ['--secret', 'id=tok,env=TOK_VALUE'], { TOK_VALUE: value });
  const tmpfs = readFileSync('/proc/mounts', 'utf8').split('\n').filter((l) => l.startsWith('tmpfs ') && l.includes(`${root}/tmp/`));
  assert.equal(tmpfs.length, 1, 'the secret is on a tmpfs under the store');
  child.kill('SIGKILL');
  await child;
  // -xdev: the store's own filesystem, not the tmpfs mounted in it
  const onDisk = await execa('find', [root, '-xdev', '-type', 'f', '-exec', 'grep', '-lF', '--', value, '{}', '+'], { reject: false });
  assert.equal(onDisk.stdout, '', "no file on the store's disk holds the secret");
  assert.ok(readFileSync('/proc/mounts', 'utf8').includes(`${root}/tmp/secret-`), 'the killed build left the tmpfs (RAM only) behind');
  const ctx = await writeContext(path.join(dir, 'ctx-after-secret'), { Dockerfile: 'FROM busybox\nRUN echo fine > /fine2\n' });
  await lbuildOk(root, ['build', ctx]);
  assert.deepEqual(mountsUnder(root), [], 'the stale tmpfs was unmounted');
  assert.deepEqual(await fsp.readdir(path.join(root, 'tmp')), []);
});
