import { execa } from 'execa';
import { existsSync, promises as fsp, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { REPO, lbuild, run } from './helpers/cli.js';
import { startDockerd } from './helpers/dockerd.js';
import { type FlatImage, type FlatNode, flattenArchive } from './helpers/flatten.js';

/*
 * The real-world slow suite (issue 15): bench/realworld/<case> are adaptations of public
 * projects' Dockerfiles (Next.js, traefik/whoami, docker-library/postgres, caddy, prometheus,
 * moby) on a Debian 12 base made with debootstrap, installing Debian packages and npm packages
 * inside RUN over the network. Each case is built cold by lbuild and by BuildKit (a private
 * dockerd, DOCKER_BUILDKIT=1), both images are flattened and compared entry by entry, and the
 * case's check runs three ways: BuildKit's image under docker run, lbuild's image under docker
 * run (after lbuild save | docker load) and under lbuild run. Results: bench/REALWORLD.md.
 * `npm run realworld [CASE...]`; needs root, debootstrap, docker.io and the network (the apt
 * mirror the host uses, the npm registry). Not part of `npm test`.
 */

const WORK = process.env.REALWORLD_DIR ?? '/var/tmp/lbuild-realworld';
const CASES = path.join(REPO, 'bench', 'realworld');
const OUT = path.join(REPO, 'bench', 'REALWORLD.md');
const DOCKER = '/usr/bin/docker';
/** The host's CA bundle, for cases whose RUN talks TLS through a proxy this machine trusts. */
const SECRETS = ['--secret', 'id=hostca,src=/etc/ssl/certs/ca-certificates.crt'];

/**
 * Paths whose bytes legitimately differ between two builds of the same Dockerfile, whoever builds
 * them (times, random ids, logs written at build time): types, modes and owners are still compared.
 */
const VOLATILE: [RegExp, string][] = [
  [/^var\/log\//, 'logs written at build time (apt, dpkg, alternatives)'],
  [/^var\/cache\/(debconf|ldconfig)\//, 'debconf and ldconfig caches (timestamps, hash order)'],
  [/^var\/lib\/(apt|dpkg)\/.*(-old|extended_states|\.bin)$|^var\/cache\/apt\/.*\.bin$/, 'apt/dpkg state backups and binary caches'],
  [/^etc\/(shadow|gshadow|passwd|group)-?$/, 'account files: the shadow file holds the day of the build'],
  [/^etc\/ssl\/certs\//, 'the CA bundle as update-ca-certificates regenerates it'],
  [/^etc\/ssl\/private\/ssl-cert-snakeoil\.key$/, 'a key pair generated at install (ssl-cert)'],
  [/(^|\/)__pycache__\/|\.pyc$/, 'Python byte code (embeds source mtimes)'],
  [/^root\/\.npm\//, "npm's own cache and logs (timestamps, random names)"],
  [/^etc\/machine-id$|^var\/lib\/dbus\/machine-id$/, 'machine id'],
  [/^usr\/lib\/postgresql\/.*\.bc$|^usr\/share\/postgresql-common\/.*/, 'generated at install'],
];

/** Differences explained: where lbuild follows current BuildKit and the BuildKit here is older. */
const EXPLAINED: [RegExp, string][] = [
  [/^hack: BuildKit \{"type":"dir".*lbuild null$/, 'the empty mount point of `--mount=...,target=/hack`: dockerd 20.10\'s BuildKit (v0.8) leaves it in the layer; BuildKit 0.11 and later remove it (moby/buildkit#3307, "the directory shouldn\'t persist into the final image"), as lbuild does'],
];

interface Outcome {
  name: string;
  lbuildSeconds?: number;
  buildkitSeconds?: number;
  lbuildError?: string;
  buildkitError?: string;
  entries?: number;
  diffs: string[];
  volatile: Map<string, number>;
  checks?: { buildkitDocker: string; lbuildDocker: string; lbuildRun: string };
}

/** The Debian mirror apt already uses on this machine (read, never written down). */
function aptMirror(): string {
  const f = '/etc/apt/sources.list.d/debian.sources';
  const m = existsSync(f) ? /^URIs:\s*(\S+)/m.exec(readFileSync(f, 'utf8')) : null;
  if (!m?.[1]) throw new Error(`no Debian mirror in ${f}`);
  return m[1];
}

async function debianBase(): Promise<string> {
  const tar = path.join(WORK, 'debian.tar');
  if (existsSync(tar)) return tar;
  const r = path.join(WORK, 'rootfs-debian');
  if (!existsSync(path.join(r, 'bin', 'bash'))) {
    process.stdout.write('debootstrap --variant=minbase bookworm (a few minutes)\n');
    const d = await run('debootstrap', ['--variant=minbase', 'bookworm', r, aptMirror()]);
    if (d.exitCode !== 0) throw new Error(`debootstrap: ${d.stderr.slice(-500)}`);
  }
  await run('sh', ['-c', `rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*`, 'sh', r]);
  const t = await run('tar', ['--numeric-owner', '--sort=name', '--xattrs', '-C', r, '--exclude=./proc/*', '--exclude=./sys/*', '--exclude=./dev/*', '-cf', `${tar}.tmp`, '.']);
  if (t.exitCode !== 0) throw new Error(t.stderr);
  await fsp.rename(`${tar}.tmp`, tar);
  return tar;
}

function compare(want: FlatImage, got: FlatImage, o: Outcome): void {
  if (want.layers !== got.layers) o.diffs.push(`layers: BuildKit ${want.layers}, lbuild ${got.layers}`);
  if (JSON.stringify(want.config) !== JSON.stringify(got.config)) o.diffs.push(`config: BuildKit ${JSON.stringify(want.config)}, lbuild ${JSON.stringify(got.config)}`);
  const paths = new Set([...Object.keys(want.fs), ...Object.keys(got.fs)]);
  o.entries = paths.size;
  for (const p of [...paths].sort()) {
    const a = want.fs[p];
    const b = got.fs[p];
    if (JSON.stringify(a ?? null) === JSON.stringify(b ?? null)) continue;
    const why = VOLATILE.find(([re]) => re.test(p))?.[1];
    const metaOnly = (n: FlatNode | undefined): string => JSON.stringify(n ? { type: n.type, mode: n.mode, uid: n.uid, gid: n.gid, target: n.target } : null);
    if (why && a && b && metaOnly(a) === metaOnly(b)) {
      o.volatile.set(why, (o.volatile.get(why) ?? 0) + 1);
      continue;
    }
    if (why && (!a || !b)) {
      o.volatile.set(`${why} (present in one image only)`, (o.volatile.get(`${why} (present in one image only)`) ?? 0) + 1);
      continue;
    }
    o.diffs.push(`${p}: BuildKit ${JSON.stringify(a ?? null)}, lbuild ${JSON.stringify(b ?? null)}`);
  }
}

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t = process.hrtime.bigint();
  const v = await f();
  return [v, Number(process.hrtime.bigint() - t) / 1e9];
}

const oneLine = (s: string): string => s.trim().split('\n').slice(-3).join(' | ').slice(0, 400);

async function main(): Promise<void> {
  await fsp.mkdir(WORK, { recursive: true });
  const base = await debianBase();
  const root = path.join(WORK, 'store');
  await fsp.rm(root, { recursive: true, force: true });
  const imp = await lbuild(root, ['import', base, 'debian:bookworm', '--change', 'CMD ["bash"]']);
  if (imp.exitCode !== 0) throw new Error(imp.stderr);
  await fsp.rm(path.join(WORK, 'dockerd'), { recursive: true, force: true });
  const dockerd = await startDockerd(WORK);
  const sock = path.join(WORK, 'dockerd', 'docker.sock');
  const outcomes: Outcome[] = [];
  try {
    const baseArchive = path.join(WORK, 'base.tar');
    await lbuild(root, ['save', 'debian:bookworm', '-o', baseArchive]);
    const loaded = await dockerd.docker(['load', '-i', baseArchive]);
    if (loaded.exitCode !== 0) throw new Error(loaded.stderr);
    const only = process.argv.slice(2);
    const names = only.length ? only : (await fsp.readdir(CASES)).sort();
    for (const name of names) {
      const ctx = path.join(CASES, name);
      const o: Outcome = { name, diffs: [], volatile: new Map() };
      outcomes.push(o);
      process.stdout.write(`== ${name}\n`);
      const [lb, lbs] = await timed(() => lbuild(root, ['build', '--progress', 'plain', ...SECRETS, '-t', `rw-${name}`, ctx]));
      await fsp.writeFile(path.join(WORK, `${name}.lbuild.log`), lb.stderr);
      if (lb.exitCode === 0) o.lbuildSeconds = lbs;
      else o.lbuildError = oneLine(lb.stderr);
      const [bk, bks] = await timed(() =>
        execa(DOCKER, ['-H', `unix://${sock}`, 'build', '--network', 'host', '--progress', 'plain', ...SECRETS, '-t', `rw-${name}`, ctx], { reject: false, env: { DOCKER_BUILDKIT: '1' }, stdin: 'ignore', all: true }),
      );
      await fsp.writeFile(path.join(WORK, `${name}.buildkit.log`), String(bk.all));
      if (bk.exitCode === 0) o.buildkitSeconds = bks;
      else o.buildkitError = oneLine(String(bk.all));
      process.stdout.write(`   lbuild ${o.lbuildError ? `FAILED: ${o.lbuildError}` : `${lbs.toFixed(1)} s`}, BuildKit ${o.buildkitError ? `FAILED: ${o.buildkitError}` : `${bks.toFixed(1)} s`}\n`);
      if (o.lbuildError || o.buildkitError) continue;
      const lbArchive = path.join(WORK, `${name}.lbuild.tar`);
      const bkArchive = path.join(WORK, `${name}.buildkit.tar`);
      await lbuild(root, ['save', `rw-${name}`, '-o', lbArchive]);
      const s = await dockerd.docker(['save', '-o', bkArchive, `rw-${name}`]);
      if (s.exitCode !== 0) throw new Error(s.stderr);
      compare(await flattenArchive(bkArchive), await flattenArchive(lbArchive), o);
      // lbuild's image into dockerd under another name, then the check three ways
      const tagged = await run('sh', ['-c', `${DOCKER} -H unix://${sock} load -q -i "$1" | sed -n 's/^Loaded image: //p'`, 'sh', lbArchive]);
      await dockerd.docker(['tag', tagged.stdout.trim() || `rw-${name}:latest`, `rw-${name}-lbuild`]);
      const check = await fsp.readFile(path.join(ctx, 'CHECK'), 'utf8').catch(() => undefined);
      const argsFile = await fsp.readFile(path.join(ctx, 'CHECK_ARGS'), 'utf8').catch(() => '');
      const cmd = check !== undefined ? ['sh', '-c', check.trim()] : argsFile.trim().split(/\s+/);
      const entry = check !== undefined ? ['--entrypoint', ''] : [];
      const both = (r: { exitCode: number; stdout: string; stderr: string }): string => `${r.stdout.trim()}${r.exitCode !== 0 ? `\n[exit ${r.exitCode}] ${oneLine(r.stderr)}` : ''}`;
      o.checks = {
        buildkitDocker: both(await dockerd.docker(['run', '--rm', '--network', 'none', ...entry, `rw-${name}`, ...cmd])),
        lbuildDocker: both(await dockerd.docker(['run', '--rm', '--network', 'none', ...entry, `rw-${name}-lbuild`, ...cmd])),
        lbuildRun: both(await lbuild(root, ['run', '--rm', '--network', 'none', ...entry, `rw-${name}`, ...cmd])),
      };
      const same = o.checks.buildkitDocker === o.checks.lbuildDocker && o.checks.lbuildDocker === o.checks.lbuildRun;
      process.stdout.write(`   ${o.entries} entries, ${o.diffs.length} differences (${[...o.volatile.values()].reduce((a, b) => a + b, 0)} volatile), check ${same ? 'same three ways' : 'DIFFERS'}\n`);
      await fsp.rm(lbArchive, { force: true });
      await fsp.rm(bkArchive, { force: true });
    }
  } finally {
    await dockerd.stop();
  }
  await fsp.writeFile(OUT, report(outcomes));
  process.stdout.write(`wrote ${path.relative(REPO, OUT)}\n`);
}

function report(outcomes: Outcome[]): string {
  const lines: string[] = [
    '# Real-world Dockerfiles: lbuild against BuildKit',
    '',
    `Written by \`npm run realworld\` (test/realworld.ts) on ${new Date().toISOString().slice(0, 10)}: the cases in`,
    '`bench/realworld/` (adaptations of public projects\' Dockerfiles on a debootstrapped Debian 12 base,',
    'installing Debian and npm packages inside RUN over the network), each built cold by lbuild and by',
    'BuildKit (Debian\'s docker.io, `DOCKER_BUILDKIT=1 docker build --network host`) on the same machine.',
    'The two images are flattened (all layers applied, whiteouts honoured) and compared entry by entry:',
    'type, mode, owner, size, sha256, link target, hard links; config fields. Entries whose bytes differ',
    'between any two builds (build-time logs, caches, timestamps) are counted as volatile when their',
    'type, mode and owner agree. Each case\'s check then runs under `docker run` on BuildKit\'s image, under',
    '`docker run` on lbuild\'s image (`lbuild save | docker load`) and under `lbuild run`.',
    'Both builders get the machine\'s CA bundle as the build secret `hostca` (the npm install reaches',
    'the registry through a TLS-inspecting proxy here); heredoc RUNs are left out of the moby case, as',
    'dockerd 20.10\'s BuildKit predates them. Times are one cold build each, for orientation only.',
    '',
    '| case | lbuild | BuildKit | entries | differences | volatile | check (docker BK / docker lbuild / lbuild run) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const o of outcomes) {
    const vol = [...o.volatile.values()].reduce((a, b) => a + b, 0);
    const same = o.checks && o.checks.buildkitDocker === o.checks.lbuildDocker && o.checks.lbuildDocker === o.checks.lbuildRun;
    lines.push(
      `| ${o.name} | ${o.lbuildError ? 'failed' : `${o.lbuildSeconds?.toFixed(1)} s`} | ${o.buildkitError ? 'failed' : `${o.buildkitSeconds?.toFixed(1)} s`} | ${o.entries ?? '-'} | ${o.checks ? o.diffs.length : '-'} | ${o.checks ? vol : '-'} | ${o.checks ? (same ? 'same output' : 'differs') : '-'} |`,
    );
  }
  for (const o of outcomes) {
    lines.push('', `## ${o.name}`, '');
    if (o.lbuildError) lines.push(`lbuild failed: \`${o.lbuildError}\``, '');
    if (o.buildkitError) lines.push(`BuildKit failed: \`${o.buildkitError}\``, '');
    if (o.diffs.length) lines.push('Differences (BuildKit, then lbuild):', '', '```', ...o.diffs.slice(0, 40), ...(o.diffs.length > 40 ? [`... ${o.diffs.length - 40} more`] : []), '```', '');
    else if (o.checks) lines.push('No difference outside the volatile entries.', '');
    for (const d of o.diffs) {
      const why = EXPLAINED.find(([re]) => re.test(d))?.[1];
      if (why) lines.push(`Why: ${why}.`, '');
    }
    if (o.volatile.size) lines.push('Volatile entries:', '', ...[...o.volatile].map(([why, n]) => `- ${n}: ${why}`), '');
    if (o.checks) {
      lines.push('Check output:', '', '```', o.checks.buildkitDocker, '```', '');
      if (o.checks.lbuildDocker !== o.checks.buildkitDocker) lines.push('lbuild\'s image under docker run:', '', '```', o.checks.lbuildDocker, '```', '');
      if (o.checks.lbuildRun !== o.checks.lbuildDocker) lines.push('lbuild\'s image under lbuild run:', '', '```', o.checks.lbuildRun, '```', '');
    }
  }
  return `${lines.join('\n')}\n`;
}

await main();
