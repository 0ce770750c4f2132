import assert from 'node:assert/strict';
import { promises as fsp, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { inspectLock } from '../src/store/lock.js';
import { storeFixture } from './helpers/busybox.js';
import { lbuild, lbuildOk } from './helpers/cli.js';

// issue 22.2: the store never wedges on a lock its owner left behind

let root: string;
storeFixture((_d, r) => {
  root = r;
});

const lock = (): string => path.join(root, 'images.lock');
const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim().replace(/-/g, '');

test('an empty lock (a writer killed mid-write) is taken over after its grace period; fsck reports and clears it', async () => {
  await fsp.writeFile(lock(), '');
  const old = new Date(Date.now() - 60_000);
  await fsp.utimes(lock(), old, old);
  assert.equal((await inspectLock(lock())).state, 'stale');
  const f = await lbuild(root, ['fsck']);
  assert.equal(f.exitCode, 1);
  assert.match(f.stdout, /problem: images\.lock: stale \(empty or unreadable\)/);
  const started = Date.now();
  await lbuildOk(root, ['tag', 'busybox:latest', 'lk:1']);
  assert.ok(Date.now() - started < 20_000, 'no 60 s wait');
  await fsp.writeFile(lock(), '');
  await fsp.utimes(lock(), old, old);
  const r = await lbuildOk(root, ['fsck', '--repair']);
  assert.match(r.stdout, /repaired: images\.lock: stale/);
  assert.equal(await fsp.access(lock()).then(() => true, () => false), false);
});

test('a lock naming a live PID that is another process now (PID reuse), or an earlier boot, is stale', async () => {
  // PID 1 is alive, but its start time is not the one the lock names
  await fsp.writeFile(lock(), JSON.stringify({ pid: 1, start: '1', boot }));
  const s = await inspectLock(lock());
  assert.equal(s.state, 'stale');
  assert.match(s.state === 'stale' ? s.why : '', /PID 1 is another process now/);
  await lbuildOk(root, ['tag', 'busybox:latest', 'lk:2']);
  await fsp.writeFile(lock(), JSON.stringify({ pid: process.pid, start: '', boot: '0'.repeat(32) }));
  assert.match(JSON.stringify(await inspectLock(lock())), /before the last boot/);
  await lbuildOk(root, ['tag', 'busybox:latest', 'lk:3']);
  // a lock a live process really holds is not stale
  await fsp.writeFile(lock(), JSON.stringify({ pid: process.pid, start: readFileSync(`/proc/${process.pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[19], boot }));
  assert.equal((await inspectLock(lock())).state, 'held');
  await fsp.rm(lock());
});

test('concurrent writers all get the lock in turn: 8 parallel tags, all recorded', async () => {
  await Promise.all(Array.from({ length: 8 }, (_, i) => lbuildOk(root, ['tag', 'busybox:latest', `par:${i}`])));
  const images = JSON.parse((await lbuildOk(root, ['images', '--format', 'json'])).stdout) as { Repository: string; Tag: string }[];
  assert.deepEqual(images.filter((i) => i.Repository === 'par').map((i) => i.Tag).sort(), ['0', '1', '2', '3', '4', '5', '6', '7']);
});
