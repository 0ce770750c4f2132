import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { storeFixture } from './helpers/busybox.js';
import { lbuild, lbuildOk, run } from './helpers/cli.js';
import { writeContext } from './helpers/context.js';

// issue 17.1: independent stages build at once

let dir: string;
let root: string;
storeFixture((d, r) => {
  dir = d;
  root = r;
});

/** /proc/uptime's first field: one clock for every container on the machine. */
const uptime = (f: string): string => `cut -d' ' -f1 /proc/uptime > ${f}`;

test('17.1: two independent stages run at the same time; the report lists steps in plan order', async () => {
  const ctx = await writeContext(path.join(dir, 'par'), {
    Dockerfile: [
      'FROM busybox AS a',
      `RUN ${uptime('/a.start')} && sleep 2 && ${uptime('/a.end')}`,
      'FROM busybox AS b',
      `RUN ${uptime('/b.start')} && sleep 2 && ${uptime('/b.end')}`,
      'FROM busybox',
      'COPY --from=a /a.start /a.end /',
      'COPY --from=b /b.start /b.end /',
      '',
    ].join('\n'),
  });
  const report = path.join(dir, 'par.json');
  await lbuildOk(root, ['build', '--report', report, '-t', 'par:1', ctx]);
  const [aStart, aEnd, bStart, bEnd] = (await lbuildOk(root, ['run', 'par:1', 'cat', '/a.start', '/a.end', '/b.start', '/b.end'])).stdout.split('\n').map(Number);
  assert.ok((aStart as number) < (bEnd as number) && (bStart as number) < (aEnd as number), `the two RUNs overlap: a ${aStart}–${aEnd}, b ${bStart}–${bEnd}`);
  const steps = (JSON.parse(await fsp.readFile(report, 'utf8')) as { steps: { stage: string; index: number }[] }).steps.map((s) => `${s.stage}/${s.index}`);
  assert.deepEqual(steps, ['a/2', 'b/2', 'stage-2/2', 'stage-2/3']);
  // the same image from the cache, and from a cold build at the same SOURCE_DATE_EPOCH
  const env = { SOURCE_DATE_EPOCH: '1700000000' };
  const warm = await lbuildOk(root, ['build', '-q', ctx], { env });
  const warm2 = await lbuildOk(root, ['build', '--progress', 'plain', ctx], { env });
  assert.match(warm2.stderr, /cache: 4\/4 steps hit/);
  assert.equal(warm2.stdout, warm.stdout);
});

test('17.1: a failing stage stops its sibling: the sibling is cancelled and the first error is the one reported', async () => {
  const ctx = await writeContext(path.join(dir, 'fail'), {
    Dockerfile: 'FROM busybox AS a\nRUN sleep 0.5; exit 3\nFROM busybox AS b\nRUN sleep 60\nFROM busybox\nCOPY --from=a / /a\nCOPY --from=b / /b\n',
  });
  const r = await lbuild(root, ['build', '--progress', 'plain', ctx]);
  assert.equal(r.exitCode, 1);
  assert.match(r.stderr, /ERROR: cancelled: a step of another stage failed/);
  assert.match(r.stderr, /\nlbuild: Dockerfile:2: RUN sleep 0\.5; exit 3 exited with code 3$/);
  assert.equal((await run('pgrep', ['-f', 'sleep 60'])).stdout, '', 'no container is left running');
});
