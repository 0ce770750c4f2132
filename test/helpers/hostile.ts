import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createWriteStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type { Result } from './cli.js';

/** One entry of a hand-made (hostile) tar. */
export type TarEntry =
  | { name: string; dir: true; mtime?: Date; mode?: number }
  | { name: string; symlink: string }
  | { name: string; hardlink: string }
  | { name: string; data: string | Buffer; mode?: number };

/** Write a tar exactly as listed: no checks, no normalisation (that is the point). */
export async function writeTar(file: string, entries: readonly TarEntry[]): Promise<string> {
  const pack = tar.pack();
  const done = pipeline(pack as unknown as Readable, createWriteStream(file));
  for (const e of entries) {
    const base = { name: e.name, uid: 0, gid: 0, mtime: new Date(946684800000) };
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
      if ('dir' in e) pack.entry({ ...base, type: 'directory', mode: e.mode ?? 0o755, mtime: e.mtime ?? base.mtime }, cb);
      else if ('symlink' in e) pack.entry({ ...base, type: 'symlink', linkname: e.symlink, mode: 0o777 }, cb);
      else if ('hardlink' in e) pack.entry({ ...base, type: 'link', linkname: e.hardlink, mode: 0o644 }, cb);
      else pack.entry({ ...base, type: 'file', mode: e.mode ?? 0o644 }, Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data), cb);
    });
  }
  pack.finalize();
  await done;
  return file;
}

export function sha256hex(b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex');
}

/** A host directory that must stay exactly as it is: one file, one empty file, one empty dir. */
export async function makeCanary(dir: string): Promise<{ dir: string; check(): Promise<void> }> {
  await fsp.mkdir(path.join(dir, 'b-dir'), { recursive: true });
  await fsp.writeFile(path.join(dir, 'secret.txt'), 'HOST-CANARY-SECRET\n');
  await fsp.writeFile(path.join(dir, 'b'), '');
  const old = new Date('2001-02-03T04:05:06Z');
  for (const p of ['secret.txt', 'b', 'b-dir', '.']) await fsp.utimes(path.join(dir, p), old, old);
  const before = (await fsp.readdir(dir)).sort();
  return {
    dir,
    check: async () => {
      assert.deepEqual((await fsp.readdir(dir)).sort(), before, `canary ${dir}: an entry was added or removed`);
      assert.equal(await fsp.readFile(path.join(dir, 'secret.txt'), 'utf8'), 'HOST-CANARY-SECRET\n');
      for (const p of ['secret.txt', 'b', 'b-dir', '.']) {
        assert.equal((await fsp.stat(path.join(dir, p))).mtime.toISOString(), old.toISOString(), `canary ${p}: its time was changed`);
      }
    },
  };
}

/** The command failed with one clear line: exit 1, no stack trace, no raw JS error name. */
export function assertOneLineFailure(r: Result, pattern?: RegExp): void {
  assert.equal(r.exitCode, 1, `expected exit 1, got ${r.exitCode}\n${r.stderr}`);
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#') && !/^\s*(cache:|writing|naming)/.test(l));
  const last = lines[lines.length - 1] ?? '';
  assert.match(last, /^lbuild: /, r.stderr);
  assert.doesNotMatch(r.stderr, /TypeError|ReferenceError|\n\s+at .*\(.*:\d+:\d+\)/, r.stderr);
  if (pattern) assert.match(last, pattern);
}
