import { execa } from 'execa';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { importBusybox } from './helpers/busybox.js';
import { lbuildOk, removeDir, tempDir } from './helpers/cli.js';
import { startDockerd } from './helpers/dockerd.js';
import { flattenArchive } from './helpers/flatten.js';
import { CASES, caseArgs, caseNames, stageCase } from './helpers/own-conformance.js';

/*
 * Records testdata/conformance/cases/<name>/expected.json from BuildKit: a private dockerd
 * (Debian's docker.io), the same busybox base as lbuild's tests (moved over with lbuild save |
 * docker load), DOCKER_BUILDKIT=1 docker build, docker save, flattened. `npm run conformance:record [CASE...]`.
 */
const dir = tempDir('lbuild-record-');
const dockerd = await startDockerd(dir);
try {
  const root = path.join(dir, 'store');
  await importBusybox(root, 'busybox:latest');
  const base = path.join(dir, 'busybox.tar');
  await lbuildOk(root, ['save', 'busybox:latest', '-o', base]);
  const loaded = await dockerd.docker(['load', '-i', base]);
  if (loaded.exitCode !== 0) throw new Error(loaded.stderr);
  const only = process.argv.slice(2);
  for (const name of only.length ? only : await caseNames()) {
    const ctx = await stageCase(name, path.join(dir, 'ctx'));
    const sock = path.join(dir, 'dockerd', 'docker.sock');
    const b = await execa('/usr/bin/docker', ['-H', `unix://${sock}`, 'build', '-q', '--network', 'none', '-t', `case-${name}`, ...(await caseArgs(name)), ctx], { reject: false, env: { DOCKER_BUILDKIT: '1' }, stdin: 'ignore' });
    if (b.exitCode !== 0) {
      process.stdout.write(`FAIL ${name}: BuildKit could not build it: ${String(b.stderr).split('\n').slice(-3).join(' ')}\n`);
      continue;
    }
    const archive = path.join(dir, `${name}.tar`);
    const s = await dockerd.docker(['save', '-o', archive, `case-${name}`]);
    if (s.exitCode !== 0) throw new Error(s.stderr);
    await fsp.writeFile(path.join(CASES, name, 'expected.json'), `${JSON.stringify(await flattenArchive(archive), null, 1)}\n`);
    process.stdout.write(`recorded ${name}\n`);
  }
} finally {
  await dockerd.stop();
  await removeDir(dir);
}
