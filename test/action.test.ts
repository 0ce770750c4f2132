import assert from 'node:assert/strict';
import { execa } from 'execa';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { importBusybox } from './helpers/busybox.js';
import { REPO, lbuildOk, run, tempDir } from './helpers/cli.js';
import { writeContext } from './helpers/context.js';
import { type Registry, startRegistry } from './helpers/registry.js';

// issue 16.6: the GitHub Action's steps, run here as a runner would run them

let dir: string;
let root: string;
let reg: Registry;
let action: string;

before(async () => {
  dir = tempDir('lbuild-action-');
  root = path.join(dir, 'store');
  await importBusybox(root, 'busybox:latest');
  reg = await startRegistry(dir);
  action = await fsp.readFile(path.join(REPO, 'action.yml'), 'utf8');
});
after(async () => {
  await reg.stop();
  await fsp.rm(dir, { recursive: true, force: true });
});

/** The `run:` script and `env:` names of the action's step with that name. */
function step(name: string): { run: string; env: string[] } {
  const at = action.indexOf(`- name: ${name}\n`);
  assert.ok(at >= 0, `action.yml has a step "${name}"`);
  const next = action.indexOf('\n    - name:', at + 1);
  const body = action.slice(at, next < 0 ? undefined : next);
  const runLine = /^ {6}run: (.*)$/m.exec(body);
  const env = [...body.matchAll(/^ {8}(LBUILD_[A-Z_]+): \$\{\{ inputs\.[a-z-]+ \}\}$/gm)].map((m) => m[1] as string);
  return { run: runLine?.[1] ?? '', env };
}

interface Runner {
  temp: string;
  summary: string;
  output: string;
  path: string;
  env: Record<string, string>;
}

async function runner(name: string): Promise<Runner> {
  const temp = path.join(dir, name);
  await fsp.mkdir(temp, { recursive: true });
  const r = { temp, summary: path.join(temp, 'summary.md'), output: path.join(temp, 'output'), path: path.join(temp, 'path') };
  for (const f of [r.summary, r.output, r.path]) await fsp.writeFile(f, '');
  return {
    ...r,
    env: {
      GITHUB_ACTION_PATH: REPO, RUNNER_TEMP: temp, GITHUB_STEP_SUMMARY: r.summary, GITHUB_OUTPUT: r.output, GITHUB_PATH: r.path,
      LBUILD_ROOT: root, PATH: process.env.PATH ?? '/usr/bin:/bin',
    },
  };
}

/** Run a step's script as the runner would: bash, the action's env, PATH plus what earlier steps added. */
async function runStep(r: Runner, name: string, inputs: Record<string, string> = {}): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const s = step(name);
  const added = (await fsp.readFile(r.path, 'utf8')).split('\n').filter((l) => l !== '');
  const res = await execa('bash', ['-c', s.run], {
    reject: false, stdin: 'ignore', extendEnv: false,
    env: { ...r.env, ...inputs, PATH: [...added.reverse(), r.env.PATH].join(':') },
  });
  return { exitCode: res.exitCode ?? -1, stdout: String(res.stdout), stderr: String(res.stderr) };
}

test('16.6: the action installs lbuild, builds with a registry cache and push, and leaves summary, outputs and report', async () => {
  assert.deepEqual(step('Build').env.sort(), ['LBUILD_BUILD_ARGS', 'LBUILD_CACHE_REF', 'LBUILD_CONTEXT', 'LBUILD_FILE', 'LBUILD_PUSH', 'LBUILD_TAGS']);
  // the artifact step uploads the file the build step writes
  assert.match(action, /uses: actions\/upload-artifact@v4\n {6}with:\n {8}name: \$\{\{ inputs\.report-name \}\}\n {8}path: \$\{\{ runner\.temp \}\}\/lbuild-report\.html\n/);
  const ctx = await writeContext(path.join(dir, 'app'), { 'app.txt': 'v1\n', Dockerfile: 'FROM busybox\nARG NOTE\nCOPY app.txt /\nRUN echo "$NOTE" > /note\n' });
  const r = await runner('first');
  const install = await runStep(r, 'Install lbuild');
  assert.equal(install.exitCode, 0, install.stderr);
  assert.match(install.stdout, /^\d+\.\d+\.\d+$/m);
  const ref = `${reg.host}/ci/app:1`;
  const inputs = { LBUILD_CONTEXT: ctx, LBUILD_TAGS: `${ref}, ${reg.host}/ci/app:latest`, LBUILD_BUILD_ARGS: 'NOTE=hello', LBUILD_CACHE_REF: `${reg.host}/ci/app:cache`, LBUILD_PUSH: 'true', LBUILD_FILE: '' };
  const built = await runStep(r, 'Build', inputs);
  assert.equal(built.exitCode, 0, built.stderr);
  const out = await fsp.readFile(r.output, 'utf8');
  const id = /^image-id=(sha256:[0-9a-f]{64})$/m.exec(out)?.[1];
  const digest = /^digest=(sha256:[0-9a-f]{64})$/m.exec(out)?.[1];
  assert.ok(id && digest, out);
  const remote = JSON.parse((await run('skopeo', ['inspect', '--tls-verify=false', `docker://${ref}`])).stdout) as { Digest: string };
  assert.equal(digest, remote.Digest);
  const summary = await fsp.readFile(r.summary, 'utf8');
  assert.equal(/^### lbuild: (.*)$/m.exec(summary)?.[1], `${ref}, ${reg.host}/ci/app:latest`);
  assert.match(summary, /\| \[stage-0 2\/3\] COPY app\.txt \/ \| \*\*miss\*\* \|/);
  assert.match(summary, new RegExp(`Pushed: \`${ref.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}@${digest}\``));
  const html = await fsp.readFile(path.join(r.temp, 'lbuild-report.html'), 'utf8');
  assert.match(html, /<title>lbuild report: /);
  const report = JSON.parse(await fsp.readFile(path.join(r.temp, 'lbuild-report.json'), 'utf8')) as { dockerfile: string; buildArgs: Record<string, string>; pushed: { name: string; digest: string }[]; image: { id: string } };
  assert.equal(report.dockerfile, path.join(ctx, 'Dockerfile'));
  assert.deepEqual(report.buildArgs, { NOTE: 'hello' });
  assert.deepEqual(report.pushed.find((p) => p.name === ref)?.digest, digest);
  assert.equal(report.image.id, id);
  // inspect knows where the image went
  const [ins] = JSON.parse((await lbuildOk(root, ['inspect', id])).stdout) as { RepoDigests: string[] }[];
  assert.ok(ins?.RepoDigests.includes(`${reg.host}/ci/app@${digest}`), JSON.stringify(ins?.RepoDigests));

  // another runner, an empty store: the registry cache makes every step a hit
  const fresh = path.join(dir, 'store-fresh');
  await importBusybox(fresh, 'busybox:latest');
  const r2 = await runner('second');
  r2.env.LBUILD_ROOT = fresh;
  assert.equal((await runStep(r2, 'Install lbuild')).exitCode, 0);
  const again = await runStep(r2, 'Build', { ...inputs, LBUILD_PUSH: 'false' });
  assert.equal(again.exitCode, 0, again.stderr);
  assert.match(await fsp.readFile(r2.summary, 'utf8'), /Cache: \*\*2\/2 steps hit \(100%\)\*\*/);
});

test('16.6: a failed build fails the step; the summary names it and gives the whole cause', async () => {
  const long = 'x'.repeat(150);
  const ctx = await writeContext(path.join(dir, 'broken'), { Dockerfile: `FROM busybox\nRUN echo ${long} && exit 3\n` });
  const r = await runner('failed');
  assert.equal((await runStep(r, 'Install lbuild')).exitCode, 0);
  const res = await runStep(r, 'Build', { LBUILD_CONTEXT: ctx, LBUILD_TAGS: '', LBUILD_BUILD_ARGS: '', LBUILD_CACHE_REF: '', LBUILD_PUSH: 'false', LBUILD_FILE: '' });
  assert.notEqual(res.exitCode, 0);
  const summary = await fsp.readFile(r.summary, 'utf8');
  const heading = /^### lbuild: (.+)$/m.exec(summary)?.[1] ?? '';
  assert.equal(heading, `${path.join(ctx, 'Dockerfile')} — build failed`);
  assert.match(summary, new RegExp(`\\*\\*Failed\\*\\* at line 2 \\(\`RUN echo x+…\`\\): Dockerfile:2: RUN echo ${long} && exit 3 exited with code 3 \\(last output: ${long}\\)`));
  assert.match(await fsp.readFile(path.join(r.temp, 'lbuild-report.html'), 'utf8'), /failed/);
});

test('16.6: cache report --format json holds the builds and the steps that miss most', async () => {
  const rep = JSON.parse((await lbuildOk(root, ['cache', 'report', '--format', 'json', '--last', '5'])).stdout) as { builds: { summary: { steps: number } }[]; mostMissed: { line: number; missed: number; reason?: string }[] };
  assert.ok(rep.builds.length >= 2);
  assert.ok(rep.mostMissed.some((m) => m.line === 2 && m.missed >= 1));
});
