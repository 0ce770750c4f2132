import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as os from 'node:os';
import { test } from 'node:test';

// runs last (files run in name order, one at a time): nothing the suite mounted may remain
test('after the whole suite, no overlay mount is left under any test store', () => {
  const leaked = readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f[0] === 'overlay' && (f[1] ?? '').startsWith(os.tmpdir()))
    .map((f) => f[1]);
  assert.deepEqual(leaked, []);
});
