import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import type { HistoryLine } from '../src/cache/records.js';
import { parseDockerfile } from '../src/dockerfile/parse.js';
import { failsThreshold, lint, lintSarif } from '../src/lint/engine.js';
import { RULES } from '../src/lint/rules/index.js';
import { REPO, lbuild, removeDir, tempDir } from './helpers/cli.js';
import { writeTar } from './helpers/hostile.js';

const ids = (src: string): string[] => lint(parseDockerfile(src), src).map((f) => `${f.line}:${f.rule}`);

const cases: [string, string, string, string][] = [
  // rule, fires on, stays quiet on
  ['LB001', 'FROM node:20\nWORKDIR /app\nCOPY . .\nRUN npm ci\nCMD ["node", "."]', 'FROM node:20\nWORKDIR /app\nCOPY package.json package-lock.json ./\nRUN npm ci\nCOPY . .', '3:LB001'],
  ['LB001', 'FROM python:3.12\nCOPY . /src\nRUN pip install -r /src/requirements.txt', 'FROM python:3.12\nCOPY requirements.txt /src/\nRUN pip install --no-cache-dir -r /src/requirements.txt\nCOPY . /src', '2:LB001'],
  ['LB002', 'FROM debian:12\nRUN wget -O /tmp/big.tgz http://127.0.0.1/x\nRUN rm /tmp/big.tgz', 'FROM debian:12\nRUN wget -O /tmp/big.tgz http://127.0.0.1/x && tar -xzf /tmp/big.tgz && rm /tmp/big.tgz', '3:LB002'],
  // issue 20: relative paths resolve against the WORKDIR, in the deleting RUN and in the writing one
  ['LB002', 'FROM node:20\nWORKDIR /src\nRUN npm pack && tar -xf lbuild-1.0.0.tgz -C pkg\nRUN rm -rf pkg', 'FROM node:20\nWORKDIR /src\nRUN npm pack && tar -xf lbuild-1.0.0.tgz -C pkg && rm -rf pkg\nWORKDIR /other\nRUN rm -rf pkg', '4:LB002'],
  ['LB002', 'FROM debian:12\nWORKDIR /opt\nRUN curl -o /opt/tool.tgz http://127.0.0.1/t\nWORKDIR app\nRUN rm ../tool.tgz', 'FROM debian:12\nWORKDIR /opt\nRUN curl -o tool.tgz http://127.0.0.1/t\nWORKDIR /elsewhere\nRUN rm tool.tgz', '5:LB002'],
  ['LB003', 'FROM debian:12\nRUN apt-get update\nRUN apt-get install -y curl && rm -rf /var/lib/apt/lists/*', 'FROM debian:12\nRUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*', '2:LB003'],
  ['LB004', 'FROM debian:12\nRUN apt-get update && apt-get install -y curl', 'FROM debian:12\nRUN --mount=type=cache,target=/var/lib/apt/lists apt-get update && apt-get install -y curl', '2:LB004'],
  ['LB004', 'FROM alpine:3.20\nRUN apk add curl', 'FROM alpine:3.20\nRUN apk add --no-cache curl', '2:LB004'],
  ['LB004', 'FROM python:3.12\nRUN pip install flask', 'FROM python:3.12\nRUN pip install --no-cache-dir flask', '2:LB004'],
  ['LB005', 'FROM alpine:3.20\nRUN apk add --no-cache build-base && make\nRUN apk del build-base', 'FROM alpine:3.20\nRUN apk add --no-cache build-base && make && apk del build-base', '3:LB005'],
  ['LB006', 'FROM alpine:3.20\nADD app.conf /etc/', 'FROM alpine:3.20\nADD rootfs.tar.gz /\nCOPY app.conf /etc/', '2:LB006'],
  ['LB007', 'FROM alpine\nRUN true', 'FROM alpine:3.20 AS base\nFROM base\nFROM scratch\nFROM alpine@sha256:' + 'a'.repeat(64), '1:LB007'],
  // issue 20: only steps that plainly do not read the sources (a build step does)
  ['LB008', 'FROM golang:1.22\nCOPY . /src\nRUN apt-get update && apt-get install -y protobuf-compiler && rm -rf /var/lib/apt/lists/*\nRUN go build -o /app /src', 'FROM golang:1.22\nRUN apt-get update && apt-get install -y protobuf-compiler && rm -rf /var/lib/apt/lists/*\nCOPY . /src\nRUN go build -o /app /src\nRUN make -C /src test', '2:LB008'],
  ['LB008', 'FROM node:20\nWORKDIR /app\nCOPY package.json package-lock.json ./\nCOPY . .\nRUN npm ci && npm cache clean --force\nRUN npm run build', 'FROM node:20\nWORKDIR /app\nCOPY package.json package-lock.json ./\nRUN npm ci && npm cache clean --force\nCOPY . .\nRUN npm run build', '4:LB008'],
];

for (const [rule, bad, good, where] of cases) {
  test(`lint ${rule}: fires on the bad example, not on the good one`, () => {
    assert.ok(ids(bad).includes(where), `${rule} should fire at ${where}: ${ids(bad).join(' ')}`);
    assert.deepEqual(ids(good).filter((x) => x.endsWith(rule)), [], `${rule} must stay quiet: ${ids(good).join(' ')}`);
  });
}

test('lint: every rule has an id, a severity, a title and a test above', () => {
  const tested = new Set(cases.map((c) => c[0]));
  for (const r of RULES) {
    assert.match(r.id, /^LB\d{3}$/);
    assert.ok(['error', 'warning', 'info'].includes(r.severity));
    assert.ok(r.title.length > 10);
    assert.ok(tested.has(r.id), `${r.id} has a firing/non-firing case`);
  }
});

test('lint: ignore pragmas on the line above and global', () => {
  const src = 'FROM alpine:3.20\n# lbuild ignore=LB004\nRUN apk add curl\nRUN pip install x';
  assert.deepEqual(ids(src), ['4:LB004']);
  assert.deepEqual(ids(`# lbuild global ignore=LB004\n${src}`), []);
});

test('lint: findings carry message and fix; threshold decides failure', () => {
  const f = lint(parseDockerfile('FROM alpine:3.20\nADD x /x\nRUN apk add curl'), '');
  assert.ok(f.every((x) => x.message.length > 0 && x.fix.length > 0 && x.column === 1));
  assert.equal(failsThreshold(f, 'warning'), true);
  assert.equal(failsThreshold(f, 'error'), false);
  assert.equal(failsThreshold(f.filter((x) => x.severity === 'info'), 'warning'), false);
  assert.equal(failsThreshold(f, 'none'), false);
});

test('lint: SARIF 2.1.0 shape', () => {
  const src = 'FROM alpine\nRUN apk add curl';
  const s = lintSarif('Dockerfile', lint(parseDockerfile(src), src)) as {
    version: string;
    runs: { tool: { driver: { name: string; rules: { id: string }[] } }; results: { ruleId: string; level: string; message: { text: string }; locations: { physicalLocation: { artifactLocation: { uri: string }; region: { startLine: number } } }[] }[] }[];
  };
  assert.equal(s.version, '2.1.0');
  assert.equal(s.runs.length, 1);
  const run = s.runs[0];
  assert.ok(run && run.tool.driver.rules.length >= RULES.length);
  assert.ok(run.results.length >= 2);
  for (const r of run.results) {
    assert.ok(run.tool.driver.rules.some((x) => x.id === r.ruleId));
    assert.ok(['error', 'warning', 'note'].includes(r.level));
    assert.equal(r.locations[0]?.physicalLocation.artifactLocation.uri, 'Dockerfile');
    assert.ok((r.locations[0]?.physicalLocation.region.startLine ?? 0) >= 1);
  }
});

test('lint: build records give "missed in X of the last Y builds" hints', () => {
  const src = 'FROM alpine:3.20\nCOPY src /src\nRUN make';
  const step = (cache: 'hit' | 'miss', line: number, instruction: string, ms: number) => ({ stage: 'stage-0', index: line, line, instruction, cache, durationMs: ms });
  // ten builds: the COPY (and so the RUN after it) missed in the first nine, hit in the last
  const history: HistoryLine[] = Array.from({ length: 10 }, (_, i) => {
    const c = i < 9 ? ('miss' as const) : ('hit' as const);
    return {
      time: '', dockerfile: '/ctx/Dockerfile', target: 'stage-0', image: '', durationMs: 0,
      steps: [step(c, 2, 'COPY src /src', 100), step(c, 3, 'RUN make', 48_000)],
      summary: { steps: 2, hits: 0, misses: 2, hitRatio: 0, savedMs: 0 },
    };
  });
  const f = lint(parseDockerfile(src), src, { history, dockerfilePath: '/ctx/Dockerfile' }).filter((x) => x.rule === 'LB100');
  assert.equal(f.length, 1);
  assert.equal(f[0]?.line, 2);
  assert.match(f[0]?.message ?? '', /COPY src \/src missed the cache in 9 of the last 10 builds and re-ran 432 s of later steps/);
  assert.deepEqual(lint(parseDockerfile(src), src, { history, dockerfilePath: '/other/Dockerfile' }).filter((x) => x.rule === 'LB100'), []);
});

test('lbuild lint CLI: formats and exit codes', async () => {
  const d = tempDir();
  try {
    const file = path.join(d, 'Dockerfile');
    await fsp.writeFile(file, 'FROM alpine:3.20\nRUN apk add curl\n');
    const root = path.join(d, 'store');
    const tty = await lbuild(root, ['lint', '-f', file]);
    assert.equal(tty.exitCode, 1);
    assert.match(tty.stdout, /Dockerfile:2 LB004 warning: this RUN leaves the apk cache in its layer\n {4}fix: use `apk add --no-cache`/);
    const json = await lbuild(root, ['lint', '-f', file, '--format', 'json', '--failure-threshold', 'error']);
    assert.equal(json.exitCode, 0);
    assert.deepEqual((JSON.parse(json.stdout) as { rule: string; severity: string; line: number; column: number }[]).map((x) => [x.rule, x.severity, x.line, x.column]), [['LB004', 'warning', 2, 1]]);
    const sarif = await lbuild(root, ['lint', '-f', file, '--format', 'sarif', '--failure-threshold', 'none']);
    assert.equal((JSON.parse(sarif.stdout) as { version: string }).version, '2.1.0');
    // run from the repository: a location code scanning maps onto it, and no placeholder URL
    const inRepo = await lbuild(root, ['lint', '-f', 'Dockerfile', '--format', 'sarif', '--failure-threshold', 'none'], { cwd: d });
    type Sarif = { runs: { tool: { driver: Record<string, unknown> }; results: { locations: { physicalLocation: { artifactLocation: unknown } }[] }[] }[] };
    const run0 = (JSON.parse(inRepo.stdout) as Sarif).runs[0];
    assert.deepEqual(run0?.results[0]?.locations[0]?.physicalLocation.artifactLocation, { uri: 'Dockerfile', uriBaseId: '%SRCROOT%' });
    assert.equal(run0?.tool.driver.informationUri, undefined);
    await fsp.writeFile(file, 'FROM alpine:3.20\nRUN apk add --no-cache curl\n');
    assert.equal((await lbuild(root, ['lint', '-f', file])).exitCode, 0);
  } finally {
    await removeDir(d);
  }
});

test('lint: on the own conformance corpus only the judged true positives fire', async () => {
  const cases = path.join(REPO, 'testdata', 'conformance', 'cases');
  const seen: string[] = [];
  for (const c of (await fsp.readdir(cases)).sort()) {
    const name = (await fsp.readFile(path.join(cases, c, 'DOCKERFILE'), 'utf8').catch(() => 'Dockerfile')).trim();
    const src = await fsp.readFile(path.join(cases, c, name), 'utf8').catch(() => undefined);
    if (src === undefined) continue;
    for (const f of lint(parseDockerfile(src, name), src)) seen.push(`${c}:${f.rule}`);
  }
  // LB006 (ADD of a plain file) and LB007 (:latest base) are true positives in these test cases;
  // whiteouts-opaque deletes in later RUNs on purpose (LB002). Nothing else may fire.
  const unexpected = seen.filter((s) => !/:LB00[67]$/.test(s) && s !== 'whiteouts-opaque:LB002');
  assert.ok(seen.includes('add-archives:LB006') && seen.includes('whiteouts-opaque:LB002'), 'the true positives are found');
  assert.deepEqual(unexpected, []);
  assert.ok(seen.length > 0);
});

test('lint (issue 20): hadolint ignores that are the same check, .hadolint.yaml, a file argument and - for stdin', async () => {
  const d = tempDir();
  try {
    const root = path.join(d, 'store');
    const src = 'FROM alpine\n# hadolint ignore=DL3020\nADD app.conf /etc/\nRUN apk add curl\n';
    await fsp.writeFile(path.join(d, 'Dockerfile.prod'), src);
    const plain = await lbuild(root, ['lint', 'Dockerfile.prod', '--format', 'json', '--failure-threshold', 'none'], { cwd: d });
    assert.deepEqual((JSON.parse(plain.stdout) as { rule: string; line: number }[]).map((f) => `${f.line}:${f.rule}`), ['1:LB007', '4:LB004']);
    await fsp.writeFile(path.join(d, '.hadolint.yaml'), 'failure-threshold: warning\nignored:\n  - DL3019 # apk --no-cache\n  - LB007\n');
    const quiet = await lbuild(root, ['lint', 'Dockerfile.prod'], { cwd: d });
    assert.equal(quiet.exitCode, 0, quiet.stdout);
    assert.equal(quiet.stdout, 'Dockerfile.prod: no findings');
    await fsp.rm(path.join(d, '.hadolint.yaml'));
    const piped = await lbuild(root, ['lint', '-', '--format', 'json', '--failure-threshold', 'none'], { cwd: d, input: src });
    assert.deepEqual((JSON.parse(piped.stdout) as { rule: string; line: number }[]).map((f) => `${f.line}:${f.rule}`), ['1:LB007', '4:LB004']);
  } finally {
    await removeDir(d);
  }
});

const findings = (src: string, opts: Parameters<typeof lint>[2] = {}): { line: number; rule: string; message: string }[] =>
  lint(parseDockerfile(src), src, opts).map((f) => ({ line: f.line, rule: f.rule, message: f.message }));
const where = (src: string, rule: string, opts: Parameters<typeof lint>[2] = {}): number[] => findings(src, opts).filter((f) => f.rule === rule).map((f) => f.line);

test('lint LB005 (issue 20): RUNs that clean their own apt lists are fine; a purge names the RUN that installed', () => {
  // docker-library postgres' shape: every RUN installs and cleans its own lists
  const own = [
    'FROM debian:bookworm-slim',
    'RUN set -eux; apt-get update; apt-get install -y --no-install-recommends gnupg; rm -rf /var/lib/apt/lists/*',
    'RUN set -eux; apt-get update; apt-get install -y --no-install-recommends locales; rm -rf /var/lib/apt/lists/*; localedef -i en_US -f UTF-8 en_US.UTF-8',
    'RUN apt-get update && apt-get install -y --no-install-recommends libnss-wrapper xz-utils zstd && rm -rf /var/lib/apt/lists/*',
    'RUN set -ex; apt-get update; apt-get install -y --no-install-recommends postgresql-common; rm -rf /var/lib/apt/lists/*',
  ].join('\n');
  assert.deepEqual(where(own, 'LB005'), []);
  // the build-then-purge extension image: the purge on line 5 removes what line 2 installed
  const purge = [
    'FROM postgres:16',
    'RUN apt-get update && apt-get install -y --no-install-recommends build-essential postgresql-server-dev-16 && rm -rf /var/lib/apt/lists/*',
    'COPY . /tmp/pgvector',
    'RUN cd /tmp/pgvector && make clean && make OPTFLAGS="" && make install',
    'RUN apt-get purge -y --auto-remove build-essential postgresql-server-dev-16 && rm -rf /tmp/pgvector',
  ].join('\n');
  const hits = findings(purge).filter((f) => f.rule === 'LB005');
  assert.deepEqual(hits.map((f) => f.line), [5]);
  assert.match(hits[0]?.message ?? '', /purges build-essential, postgresql-server-dev-16 that the RUN on line 2 installed/);
  // a RUN that installs and purges its own build dependencies is fine
  assert.deepEqual(where('FROM debian:12\nRUN echo one\nRUN apt-get update && apt-get install -y gcc && make && apt-get purge -y --auto-remove gcc && rm -rf /var/lib/apt/lists/*', 'LB005'), []);
  // lists left by one RUN and removed by another, not the one before it
  assert.deepEqual(where('FROM debian:12\nRUN apt-get update && apt-get install -y curl\nRUN echo between\nRUN rm -rf /var/lib/apt/lists/*', 'LB005'), [4]);
});

test('lint LB004 (issue 20): only stages the image is made of; dead [ -f ] branches; .deb files on a base without docker-clean', async () => {
  // the Next.js example's shape: deps installs, the final stage copies node_modules only
  const next = [
    'FROM node:18-alpine AS deps',
    'WORKDIR /app',
    'COPY package.json yarn.lock* package-lock.json* pnpm-lock.yaml* ./',
    'RUN if [ -f yarn.lock ]; then yarn --frozen-lockfile; elif [ -f package-lock.json ]; then npm ci; else echo "Lockfile not found." && exit 1; fi',
    'FROM node:18-alpine AS runner',
    'WORKDIR /app',
    'COPY --from=deps /app/node_modules ./node_modules',
  ].join('\n');
  assert.deepEqual(where(next, 'LB004'), [], 'deps is not part of the image');
  const inDeps = findings(next, { target: 'deps' }).filter((f) => f.rule === 'LB004');
  assert.deepEqual(inDeps.map((f) => f.message).sort(), ['this RUN leaves the npm cache in its layer', 'this RUN leaves the yarn cache in its layer'], 'no context: both branches may run');
  const d = tempDir();
  try {
    await fsp.writeFile(path.join(d, 'package.json'), '{}');
    await fsp.writeFile(path.join(d, 'package-lock.json'), '{}');
    const withCtx = findings(next, { target: 'deps', context: d }).filter((f) => f.rule === 'LB004');
    assert.deepEqual(withCtx.map((f) => f.message), ['this RUN leaves the npm cache in its layer'], 'no yarn.lock in the context: the yarn branch never runs');
    await fsp.writeFile(path.join(d, 'yarn.lock'), '');
    assert.deepEqual(findings(next, { target: 'deps', context: d }).filter((f) => f.rule === 'LB004').map((f) => f.message), ['this RUN leaves the yarn cache in its layer'], 'yarn.lock present: only the yarn branch runs');
  } finally {
    await removeDir(d);
  }
  // .deb files: known only when the store has the base image
  const apt = 'FROM plain-debian:12\nRUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*';
  assert.deepEqual(where(apt, 'LB004'), [], 'base unknown: no claim');
  const noClean = findings(apt, { bases: new Map([['plain-debian:12', { ref: 'plain-debian:12', aptDockerClean: false }]]) }).filter((f) => f.rule === 'LB004');
  assert.deepEqual(noClean.map((f) => f.line), [2]);
  assert.match(noClean[0]?.message ?? '', /\.deb files in \/var\/cache\/apt\/archives: the base image plain-debian:12 has no \/etc\/apt\/apt\.conf\.d\/docker-clean/);
  assert.deepEqual(where(apt, 'LB004', { bases: new Map([['plain-debian:12', { ref: 'plain-debian:12', aptDockerClean: true }]]) }), []);
  assert.deepEqual(where(`${apt} && apt-get clean`, 'LB004', { bases: new Map([['plain-debian:12', { ref: 'plain-debian:12', aptDockerClean: false }]]) }), []);
});

test('lint (issue 20): a finding in a stage the target does not use says so; size rules skip stages only copied from', () => {
  const src = 'FROM debian:12 AS tools\nRUN apt-get update\nFROM debian:12 AS build\nRUN curl -o /tmp/x.tgz http://127.0.0.1/x\nRUN rm /tmp/x.tgz\nFROM debian:12\nCOPY --from=build /etc/hostname /h';
  const f = findings(src);
  const lb003 = f.find((x) => x.rule === 'LB003');
  assert.match(lb003?.message ?? '', /\(in stage tools, which building the image does not use\)$/);
  assert.deepEqual(f.filter((x) => x.rule === 'LB002'), [], 'build is only copied from: its layers do not ship');
  assert.deepEqual(where(src, 'LB002', { target: 'build' }), [5]);
});

test('lbuild lint (issue 20): the store\'s base image decides the .deb hint', async () => {
  const d = tempDir();
  try {
    const root = path.join(d, 'store');
    for (const [name, files] of [['with-clean', { 'etc/apt/apt.conf.d/docker-clean': 'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb || true"; };\n', 'bin/true': '' }], ['without-clean', { 'etc/apt/apt.conf.d/other': '\n', 'bin/true': '' }]] as const) {
      const rootfs = path.join(d, `${name}.tar`);
      await writeTar(rootfs, Object.entries(files).map(([n, data]) => ({ name: n, data })));
      assert.equal((await lbuild(root, ['import', rootfs, `${name}:1`])).exitCode, 0);
    }
    for (const [base, expect] of [['with-clean:1', 0], ['without-clean:1', 1]] as const) {
      await fsp.writeFile(path.join(d, 'Dockerfile'), `FROM ${base}\nRUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*\n`);
      const r = await lbuild(root, ['lint', '--format', 'json', '--failure-threshold', 'none'], { cwd: d });
      assert.equal(r.exitCode, 0, r.stderr);
      const debs = (JSON.parse(r.stdout) as { rule: string; message: string }[]).filter((x) => x.rule === 'LB004' && x.message.includes('.deb'));
      assert.equal(debs.length, expect, `${base}: ${r.stdout}`);
    }
  } finally {
    await removeDir(d);
  }
});
