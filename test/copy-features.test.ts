import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { parseChmod } from '../src/builder/copy.js';
import { storeFixture } from './helpers/busybox.js';
import { lbuild, lbuildOk, run } from './helpers/cli.js';
import { writeContext } from './helpers/context.js';

// issue 15.7: COPY --parents, symbolic --chmod, FROM --platform for another platform

let dir: string;
let root: string;
storeFixture((d, r) => {
  dir = d;
  root = r;
});

const runIn = async (ref: string, cmd: string): Promise<string> => (await lbuildOk(root, ['run', '--rm', ref, 'sh', '-c', cmd])).stdout;

test('COPY --parents keeps the matched paths, below a /./ pivot when there is one', async () => {
  const ctx = await writeContext(path.join(dir, 'parents'), {
    'a/b/one.txt': '1',
    'a/c/two.txt': '2',
    'src/pkg/x.go': 'x',
    Dockerfile: 'FROM busybox\nCOPY --parents a/*/*.txt /keep/\nCOPY --parents ./src/./pkg/x.go /pivot/\nCOPY --parents a/b /dir/\n',
  });
  await lbuildOk(root, ['build', '-t', 'parents:1', ctx]);
  assert.equal(await runIn('parents:1', 'cd / && find keep pivot dir -type f | sort'), 'dir/a/b/one.txt\nkeep/a/b/one.txt\nkeep/a/c/two.txt\npivot/pkg/x.go');
});

test('symbolic --chmod works relative to each entry\'s own mode', async () => {
  const f = parseChmod('u+x,go-w') as (m: number, d: boolean) => number;
  assert.equal(f(0o666, false).toString(8), '744');
  const g = parseChmod('a=rX') as (m: number, d: boolean) => number;
  assert.equal(g(0o644, false).toString(8), '444');
  assert.equal(g(0o755, true).toString(8), '555');
  assert.throws(() => parseChmod('u+q'), /not an octal or symbolic mode/);
  const ctx = await writeContext(path.join(dir, 'chmod'), { 'f.sh': 'echo', 'd/g': 'g', Dockerfile: 'FROM busybox\nCOPY --chmod=u+x,g+w f.sh /f.sh\nCOPY --chmod=a=rX d /d/\n' });
  await fsp.chmod(path.join(ctx, 'f.sh'), 0o644);
  await lbuildOk(root, ['build', '-t', 'chmod:1', ctx]);
  assert.equal(await runIn('chmod:1', 'stat -c %a /f.sh /d/g'), '764\n444');
});

test('FROM --platform for another platform never builds on this host\'s base: one line instead (issue 19: platform.test.ts builds them)', async () => {
  const ctx = await writeContext(path.join(dir, 'platform'), { Dockerfile: 'FROM --platform=linux/s390x busybox\nRUN true\n' });
  // --pull=never: the s390x busybox is not pulled from Docker Hub (tests reach 127.0.0.1 only)
  const r = await lbuild(root, ['build', '--pull=never', ctx]);
  assert.equal(r.exitCode, 1);
  assert.match(r.stderr, /Dockerfile:1: image busybox in the store is linux\/amd64, not linux\/s390x, and --pull=never forbids pulling the linux\/s390x one \(lbuild pull --platform linux\/s390x busybox\)/);
  await fsp.writeFile(path.join(ctx, 'Dockerfile'), 'FROM --platform=$BUILDPLATFORM busybox\nRUN true\n');
  await lbuildOk(root, ['build', ctx]);
});

test('a symlink in the context is copied as a link: the xattrs of what it points at (a host file) are neither keyed nor copied', async () => {
  const host = path.join(dir, 'host-secret');
  await fsp.writeFile(host, 'secret\n');
  const set = await run('setfattr', ['-n', 'user.secret', '-v', 'host-value', host]);
  assert.equal(set.exitCode, 0, set.stderr);
  const ctx = await writeContext(path.join(dir, 'linkx'), { Dockerfile: 'FROM busybox\nCOPY . /c/\n', 'plain.txt': 'p\n', out: { symlink: host } });
  const built = await lbuildOk(root, ['build', '-t', 'linkx:1', ctx]);
  assert.equal(await runIn('linkx:1', 'readlink /c/out'), host);
  // the layer holds no attribute at all: nothing of the host file went in
  const tar = path.join(dir, 'linkx.tar');
  await lbuildOk(root, ['save', 'linkx:1', '-o', tar]);
  const listing = await run('sh', ['-c', `mkdir -p ${dir}/linkx-out && tar -xf ${tar} -C ${dir}/linkx-out && for l in $(find ${dir}/linkx-out -name '*.tar' -o -type f -path '*blobs*'); do tar -tvf "$l" --xattrs 2>/dev/null; cat "$l" | grep -a -c host-value; done`]);
  assert.doesNotMatch(listing.stdout, /^[1-9]/m, 'host-value appears in a layer');
  // a change of the host file's attribute is no change of the build's input
  await run('setfattr', ['-n', 'user.secret', '-v', 'other', host]);
  const again = await lbuildOk(root, ['build', '--progress', 'plain', '-t', 'linkx:1', ctx]);
  assert.match(again.stderr, /COPY \. \/c\/\n#\d+ CACHED/, again.stderr);
  assert.equal(again.stdout.trim(), built.stdout.trim());
});
