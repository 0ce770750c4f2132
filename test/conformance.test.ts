import assert from 'node:assert/strict';
import { execa } from 'execa';
import * as path from 'node:path';
import { test } from 'node:test';
import { REPO } from './helpers/cli.js';

/** The shared conformance suite (cases from buildah/BuildKit, expectations made by BuildKit). */
test('conformance: at least 90% of the cases build the same image as BuildKit', { timeout: 900_000 }, async () => {
  const r = await execa('bash', [path.join(REPO, 'test', 'conformance.sh')], { reject: false, all: true, stdin: 'ignore' });
  const out = String(r.all);
  const m = /^(\d+) passed, (\d+) failed$/m.exec(out);
  assert.ok(m, `no summary line in:\n${out.slice(-2000)}`);
  const passed = Number(m[1]);
  const failed = Number(m[2]);
  const failures = out.split('\n').filter((l) => l.startsWith('FAIL '));
  process.stdout.write(`# conformance: ${passed} passed, ${failed} failed\n${failures.map((f) => `# ${f}`).join('\n')}\n`);
  assert.ok(passed + failed >= 70, 'the suite ran its cases');
  assert.ok(passed / (passed + failed) >= 0.9, `pass ratio ${passed}/${passed + failed}`);
});
