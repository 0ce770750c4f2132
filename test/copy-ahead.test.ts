import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { EPOCH, differentialStores } from './helpers/differential.js';
import { execa } from 'execa';
import { BIN, lbuildOk } from './helpers/cli.js';
import { writeContext } from './helpers/context.js';

/*
 * The COPY after a RUN is keyed while the RUN runs (issue 17.1: its walk and hashing of the
 * context done ahead). Whatever happens in between (variables that change what it selects, a
 * file edited while the RUN runs), the image must be the one a --no-cache build in a store of
 * its own makes, with the same SOURCE_DATE_EPOCH, and a cache hit must never stand for other files.
 */

const { store, build, coldImage, dir } = differentialStores({ LBUILD_TRACE: '1' });

const show = async (root: string, id: string, file: string): Promise<string> => (await lbuildOk(root, ['run', '--rm', id, 'cat', file])).stdout;

/** The index of the first progress line holding `text`, -1 if none. */
const lineOf = (log: string, text: string): number => log.split('\n').findIndex((l) => l.includes(text));

test('the COPY after a RUN walks the context while the RUN runs; the image is a cold build\'s', async () => {
  const root = await store('ahead');
  const ctx = path.join(dir(), 'ahead-ctx');
  const files: Record<string, string> = { Dockerfile: 'FROM busybox\nRUN sleep 1 && echo ran > /ran\nCOPY . /app/\n' };
  for (let f = 0; f < 50; f++) files[`src/f${f}.txt`] = `file ${f}\n`;
  await writeContext(ctx, files);
  const first = await build(root, ctx);
  // walked once, before the COPY step started, and that walk was the one its key took
  assert.equal(first.log.split('\n').filter((l) => l.startsWith('trace: walk ahead')).length, 1, first.log);
  assert.ok(lineOf(first.log, 'trace: walk ahead') < lineOf(first.log, 'COPY . /app/'), first.log);
  assert.match(first.log, /context: 51 file\(s\) checksummed/);
  assert.equal(first.id, await coldImage('ahead-cold', ctx));
  assert.equal(await show(root, first.id, '/app/src/f7.txt'), 'file 7');
  // a rebuild: the RUN hits, so nothing runs for a walk to overlap: none is made ahead, and the
  // COPY's own walk keys it, a hit too
  const again = await build(root, ctx);
  assert.equal(again.id, first.id);
  assert.match(again.log, /cache: 2\/2 steps hit/);
  assert.doesNotMatch(again.log, /trace: walk ahead/);
});

test('a variable set between the RUN and the COPY changes what it selects: the walk made ahead is not taken', async () => {
  const root = await store('vars');
  const ctx = path.join(dir(), 'vars-ctx');
  await writeContext(ctx, { Dockerfile: 'FROM busybox\nENV SRC=a.txt\nRUN true\nENV SRC=b.txt\nCOPY $SRC /x\n', 'a.txt': 'the first\n', 'b.txt': 'the second\n' });
  const r = await build(root, ctx);
  assert.match(r.log, /trace: walk ahead/, 'a walk was made ahead for a.txt');
  assert.equal(await show(root, r.id, '/x'), 'the second');
  // keyed on b.txt from the start: what it copied is what it was keyed on
  assert.doesNotMatch(r.log, /the build context changed while this step read it/);
  assert.equal(r.id, await coldImage('vars-cold', ctx));
});

test('a file edited while the RUN runs, after the walk ahead: the COPY copies and is cached under what it read', async () => {
  const root = await store('edit');
  const ctx = path.join(dir(), 'edit-ctx');
  await writeContext(ctx, { Dockerfile: 'FROM busybox\nRUN sleep 3\nCOPY data.txt /data.txt\n', 'data.txt': 'before\n' });
  const child = execa(process.execPath, [BIN, '--root', root, 'build', '--progress', 'plain', ctx], { env: { ...EPOCH, LBUILD_TRACE: '1' }, reject: false, stdin: 'ignore' });
  // the walk ahead is done as the RUN starts; the edit lands after it, while the RUN sleeps
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    child.stderr?.on('data', (c: Buffer) => {
      seen += c.toString();
      if (seen.includes('trace: walk ahead')) resolve();
    });
    void child.then(() => reject(new Error(`the build ended before its walk ahead:\n${seen}`)));
  });
  await fsp.writeFile(path.join(ctx, 'data.txt'), 'after the edit\n');
  const done = await child;
  assert.equal(done.exitCode, 0, String(done.stderr));
  const r = { id: String(done.stdout).trim(), log: String(done.stderr) };
  assert.equal(await show(root, r.id, '/data.txt'), 'after the edit');
  assert.match(r.log, /the build context changed while this step read it/);
  // the record is under what was read: the same files now hit, and give a cold build's image
  const again = await build(root, ctx);
  assert.match(again.log, /cache: 2\/2 steps hit/);
  assert.equal(again.id, r.id);
  assert.equal(r.id, await coldImage('edit-cold', ctx));
});
