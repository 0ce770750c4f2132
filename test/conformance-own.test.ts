import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { storeFixture } from './helpers/busybox.js';
import { lbuildOk } from './helpers/cli.js';
import { type FlatImage, flattenArchive } from './helpers/flatten.js';
import { CASES, caseArgs, caseNames, stageCase } from './helpers/own-conformance.js';

// lbuild's own corpus (testdata/conformance): every case must build the image BuildKit built

let dir: string;
let root: string;
storeFixture((d, r) => {
  dir = d;
  root = r;
});

/** Differences as readable lines: path, field, BuildKit's value, lbuild's. */
function differences(want: FlatImage, got: FlatImage): string[] {
  const out: string[] = [];
  if (want.layers !== got.layers) out.push(`layers: BuildKit ${want.layers}, lbuild ${got.layers}`);
  if (JSON.stringify(want.config) !== JSON.stringify(got.config)) out.push(`config: BuildKit ${JSON.stringify(want.config)}, lbuild ${JSON.stringify(got.config)}`);
  for (const p of new Set([...Object.keys(want.fs), ...Object.keys(got.fs)])) {
    const a = JSON.stringify(want.fs[p] ?? null);
    const b = JSON.stringify(got.fs[p] ?? null);
    if (a !== b) out.push(`${p}: BuildKit ${a}, lbuild ${b}`);
  }
  return out;
}

test('own conformance corpus: every case builds the image BuildKit built', async () => {
  const failures: string[] = [];
  const names = await caseNames();
  assert.ok(names.length >= 15, 'the corpus has its cases');
  for (const name of names) {
    const expected = JSON.parse(await fsp.readFile(path.join(CASES, name, 'expected.json'), 'utf8')) as FlatImage;
    const ctx = await stageCase(name, path.join(dir, 'ctx'));
    await lbuildOk(root, ['build', '-t', `case-${name}`, ...(await caseArgs(name)), ctx]);
    const archive = path.join(dir, `${name}.tar`);
    await lbuildOk(root, ['save', `case-${name}`, '-o', archive]);
    const diff = differences(expected, await flattenArchive(archive));
    if (diff.length) failures.push(`${name}:\n  ${diff.slice(0, 8).join('\n  ')}`);
  }
  assert.deepEqual(failures, [], failures.join('\n'));
});
