import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { storeFixture } from './helpers/busybox.js';
import { lbuildOk } from './helpers/cli.js';
import { writeContext } from './helpers/context.js';

// issue 14 (structure): garbage collection knows every part of the store's layout

let dir: string;
let root: string;
storeFixture((d, r) => {
  dir = d;
  root = r;
});

const ls = async (p: string): Promise<string[]> => (await fsp.readdir(p).catch(() => [] as string[])).sort();

test('GC removes the side files of what is gone; prune --all empties cache mounts and build logs', async () => {
  const ctx = await writeContext(path.join(dir, 'gc'), { Dockerfile: 'FROM busybox\nRUN --mount=type=cache,target=/c echo kept > /c/f && echo x > /x\n' });
  const id = (await lbuildOk(root, ['build', '-t', 'gc:1', '--report', path.join(dir, 'r.json'), ctx])).stdout.trim();
  assert.ok((await ls(path.join(root, 'buildinfo'))).includes(`${id.slice(7)}.json`));
  assert.equal((await ls(path.join(root, 'cache', 'mounts'))).length, 1);
  // side files of layers and chains that no image or cache record has
  const ghost = 'f'.repeat(64);
  await fsp.mkdir(path.join(root, 'cache', 'origins'), { recursive: true });
  await fsp.writeFile(path.join(root, 'cache', 'origins', `${ghost}.json`), '{}');
  await fsp.mkdir(path.join(root, 'flat', 'deadbeefdeadbeef'), { recursive: true });
  await lbuildOk(root, ['rmi', 'gc:1']);
  assert.ok(!(await ls(path.join(root, 'buildinfo'))).includes(`${id.slice(7)}.json`), 'buildinfo of a removed image goes');
  assert.deepEqual(await ls(path.join(root, 'cache', 'origins')), []);
  assert.deepEqual(await ls(path.join(root, 'flat')), []);
  assert.ok((await fsp.readFile(path.join(root, 'cache', 'history.jsonl'), 'utf8')).length > 0);
  const out = await lbuildOk(root, ['prune', '-f', '--all']);
  assert.match(out.stdout, /build log and cache-mount entr/);
  assert.deepEqual(await ls(path.join(root, 'cache', 'mounts')), []);
  assert.equal(await fsp.readFile(path.join(root, 'cache', 'history.jsonl'), 'utf8'), '');
  assert.deepEqual(await ls(path.join(root, 'cache', 'reports')), []);
  // the store still builds after all that
  await lbuildOk(root, ['build', '-t', 'gc:2', ctx]);
  await lbuildOk(root, ['fsck']);
});
