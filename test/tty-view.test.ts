import assert from 'node:assert/strict';
import { execa } from 'execa';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { storeFixture } from './helpers/busybox.js';
import { BIN } from './helpers/cli.js';
import { writeContext } from './helpers/context.js';
import { finalScreen, frames } from './helpers/terminal.js';

// issue 16.5: the terminal view, under a real pseudo-terminal (script(1))

let dir: string;
let root: string;
storeFixture((d, r) => {
  dir = d;
  root = r;
});

test('16.5: header and ticking clocks, the last six lines of a running RUN, miss reasons kept, a box for a failure', async () => {
  const ctx = await writeContext(path.join(dir, 'tty'), {
    Dockerfile: [
      'FROM busybox',
      'RUN for i in 1 2 3 4 5 6 7 8 9 10; do echo line$i; sleep 0.05; done; sleep 1',
      'RUN sleep 1.5',
      'RUN echo first; echo second; exit 4',
      '',
    ].join('\n'),
  });
  const raw = path.join(dir, 'tty.raw');
  const cmd = `stty cols 120 rows 40; ${process.execPath} ${BIN} --root ${root} build -t tty:1 ${ctx}`;
  const r = await execa('script', ['-qec', cmd, raw], { reject: false, stdin: 'ignore' });
  assert.equal(r.exitCode, 1, 'script -e passes on the exit code of the failed build');
  const text = await fsp.readFile(raw, 'utf8');
  assert.match(text, /COMMAND_EXIT_CODE="1"/, 'the build failed, as the Dockerfile says');
  const screen = finalScreen(text).map((l) => l.trimEnd());
  const at = (re: RegExp): number => screen.findIndex((l) => re.test(l));
  // every step stays on screen as one line, with its miss reason under it
  const run1 = at(/^ => \[stage-0 2\/4\] RUN for i in .* \d+\.\ds$/);
  assert.ok(run1 >= 0, screen.join('\n'));
  assert.equal(screen[run1 + 1], '    cache miss: not built before');
  const run2 = at(/^ => \[stage-0 3\/4\] RUN sleep 1\.5 +1\.\ds$/);
  assert.ok(run2 > run1 && screen[run2 + 1] === '    cache miss: not built before', screen.join('\n'));
  // the failure: its line, then a box with the step's last lines and the error in full
  const failed = at(/^ => ERROR \[stage-0 4\/4\] RUN echo first; echo second; exit 4 +\d+\.\ds$/);
  assert.ok(failed > run2, screen.join('\n'));
  assert.deepEqual(screen.slice(failed + 2, failed + 7), ['------', ' > [stage-0 4/4] RUN echo first; echo second; exit 4:', ' > first', ' > second', '------']);
  assert.equal(screen[failed + 7], 'ERROR: Dockerfile:4: RUN echo first; echo second; exit 4 exited with code 4 (last output: second)');
  assert.ok(screen.some((l) => /^\[\+\] Building \d+\.\ds \(4\/4\)$/.test(l)), 'the header, with the steps done');
  // while RUN sleep 1.5 printed nothing, its clock went on
  const clocks = new Set(frames(text).flatMap((f) => [...f.matchAll(/RUN sleep 1\.5\x1b\[39m +(\d+\.\d)s/g)].map((m) => m[1])));
  assert.ok(clocks.size >= 4, `the clock ticked: ${[...clocks].join(', ')}`);
  assert.ok(frames(text).some((f) => /\[\+\] Building \d+\.\ds \(2\/3\)/.test(f)), 'the header counts steps as they finish');
  // the running RUN shows its last six lines, not one overwritten line
  const withTen = frames(text).filter((f) => f.includes('# line10'));
  assert.ok(withTen.length > 0);
  const last = withTen[withTen.length - 1] as string;
  for (const n of [5, 6, 7, 8, 9, 10]) assert.ok(last.includes(`# line${n}\x1b`), `line${n} on screen`);
  assert.ok(!last.includes('# line4\x1b'), 'only the last six');
});
