import { promises as fsp } from 'node:fs';
import { statfs } from 'node:fs/promises';
import * as path from 'node:path';
import { sourcesDigest } from '../../context/checksum.js';
import { cleanSource } from '../../context/select.js';
import { DockerfileError } from '../../dockerfile/errors.js';
import { LbuildError } from '../../errors.js';
import { emulationProblem } from '../../runtime/emulation.js';
import type { RunInstr } from '../../dockerfile/instructions.js';
import type { Stage } from '../../dockerfile/plan.js';
import { DEFAULT_PATH, runContainer, sandboxMounts } from '../../runtime/runc.js';
import { resolveUser } from '../../runtime/user.js';
import { tempName } from '../../util/fsx.js';
import { makeWorkdir } from '../copy.js';
import { missingMountPoints } from '../layerstep.js';
import { commandArgv } from '../metadata.js';
import { mountKey, prepareMounts } from '../mounts.js';
import { type PreparedStep, type StepEnv, type StepState, createdBy } from './step.js';
import { layout } from '../../store/layout.js';

/**
 * RUN. Keyed on the command, the environment, user, working directory, network, security mode,
 * mounts and the content of what bind mounts show (context or stage); executed under runc.
 */
export async function prepareRun(instr: RunInstr, state: StepState, stage: Stage, env: StepEnv): Promise<PreparedStep> {
  const cfg = state.config.config;
  const bindSources: string[] = [];
  for (const m of instr.mounts) {
    if (m.type !== 'bind') continue;
    const pattern = cleanSource(m.options.source ?? '/', env.file, instr.line);
    if (m.options.from !== undefined) {
      const src = await env.layerSource(m.options.from, instr.line, stage);
      bindSources.push((await env.layerSources.digest(src, [pattern], [])).digest);
    } else {
      const ctx = await env.context();
      bindSources.push((await sourcesDigest(ctx, [pattern], ctx.ignore ? { ignore: ctx.ignore } : {}, env.statCache)).digest);
    }
  }
  const network = instr.network ?? env.network;
  return {
    inputs: {
      parent: state.parent,
      epoch: state.epoch,
      op: {
        kind: 'RUN', argv: commandArgv(instr.cmd, cfg.Shell), env: cfg.Env ?? [], user: cfg.User ?? '',
        // 'default' once meant the host's network; a private one is another environment
        workdir: cfg.WorkingDir || '/', network: network === 'default' ? 'private' : network,
        ...(env.extraHosts.length ? { hosts: env.extraHosts.map((h) => `${h.name}=${h.ip}`) } : {}),
        ...(instr.security === 'insecure' ? { security: 'insecure' } : {}),
        ...(instr.mounts.length ? { mounts: instr.mounts.map(mountKey), bindSources } : {}),
      },
      args: Object.fromEntries(state.scope.runArgs()),
    },
    createdBy: createdBy(instr, cfg.Shell, state.scope),
    execute: async (snap, log) => {
      // another architecture runs under QEMU: say exactly what is missing before runc fails obscurely
      const problem = emulationProblem(state.platform);
      if (problem) throw new LbuildError(problem);
      const r = await runInSandbox(instr, state, stage, snap.merged, env, log);
      // a context bind is a copy made when the RUN started: key what that copy held
      const consumed = r.bindDigests.map((d, i) => d ?? (bindSources[i] as string));
      return { stubs: r.stubs, ...(consumed.some((d, i) => d !== bindSources[i]) ? { consumed: { bindSources: consumed } } : {}) };
    },
  };
}

async function runInSandbox(instr: RunInstr, state: StepState, stage: Stage, root: string, env: StepEnv, log: (line: string) => void): Promise<{ stubs: string[]; bindDigests: (string | undefined)[] }> {
  const cfg = state.config.config;
  const user = resolveUser(root, cfg.User);
  const vars = new Map<string, string>();
  for (const kv of cfg.Env ?? []) {
    const eq = kv.indexOf('=');
    if (eq > 0) vars.set(kv.slice(0, eq), kv.slice(eq + 1));
  }
  for (const [k, val] of state.scope.runArgs()) if (!vars.has(k)) vars.set(k, val);
  for (const [k, val] of state.scope.proxyEnv()) if (!vars.has(k)) vars.set(k, val);
  if (!vars.has('PATH')) vars.set('PATH', DEFAULT_PATH);
  if (!vars.has('HOME')) vars.set('HOME', user.home);
  const cwd = cfg.WorkingDir || '/';
  const insecure = instr.security === 'insecure';
  if (insecure && !env.allowInsecure) throw new DockerfileError(env.file, instr.line, 'RUN --security=insecure needs --allow security.insecure on the command line');
  const stubs = missingMountPoints(root, sandboxMounts('/').filter((m) => m.type === 'bind').map((m) => m.destination));
  const extra = await prepareMounts(instr.mounts, root, cwd, {
    file: env.file,
    line: instr.line,
    store: env.store,
    context: await env.context(),
    secrets: env.secrets,
    ssh: env.ssh,
    view: async (from) => {
      const opened = await env.layerSources.open(await env.layerSource(from, instr.line, stage));
      return { root: opened.source.root, release: opened.release };
    },
  });
  stubs.push(...extra.stubs);
  // `RUN <<EOF` whose body starts with #!: the body is a script for that interpreter; it is
  // mounted under /dev (a tmpfs, so nothing reaches the layer) and executed, as BuildKit does
  let args = commandArgv(instr.cmd, cfg.Shell);
  const only = instr.heredocs.length === 1 ? instr.heredocs[0] : undefined;
  if (only && instr.cmd.form === 'shell' && instr.cmd.text === only.content.replace(/\n$/, '') && only.content.startsWith('#!')) {
    const script = path.join(env.store.tmpDir, tempName('script'));
    await fsp.writeFile(script, only.content, { mode: 0o755 });
    extra.mounts.push({ destination: `/dev/pipes/${only.name}`, type: 'bind', source: script, options: ['rbind', 'ro'] });
    const previous = extra.release;
    extra.release = async () => {
      await previous();
      await fsp.rm(script, { force: true });
    };
    args = [`/dev/pipes/${only.name}`];
  }
  // the working directory must exist (BuildKit creates it too); it is part of the layer
  makeWorkdir(root, cwd, { uid: user.uid, gid: user.gid });
  const result = await runContainer(
    {
      root,
      args,
      env: [...vars, ...extra.env].map(([k, val]) => `${k}=${val}`),
      cwd,
      uid: user.uid,
      gid: user.gid,
      additionalGids: user.additionalGids,
      network: instr.network ?? env.network,
      extraHosts: env.extraHosts,
      insecure,
      onLine: (l) => log(env.redact(l)),
      onStarted: () => env.prefetch?.open(instr),
      extraMounts: extra.mounts,
    },
    layout.runc(env.store.root),
    env.store.tmpDir,
  ).finally(() => extra.release());
  if (result.exitCode !== 0) {
    // the first line of the command, cut short: a 10 MB RUN line is not repeated in every message
    const full = (instr.cmd.form === 'exec' ? JSON.stringify(instr.cmd.args) : instr.cmd.text).split('\n')[0] ?? '';
    const cmd = full.length > 200 ? `${full.slice(0, 200)}…` : full;
    // a command killed by a full disk says so in its own words; name the real cause
    const fs = await statfs(env.store.root).catch(() => undefined);
    if (fs && fs.bavail * fs.bsize < 1024 * 1024) {
      throw new DockerfileError(env.file, instr.line, `RUN ${cmd} failed: no space left on the store's disk (${env.store.root})`);
    }
    const last = result.tail.map(env.redact).filter((l) => l.trim() !== '').slice(-1)[0];
    throw new DockerfileError(env.file, instr.line, `RUN ${cmd} exited with code ${result.exitCode}${last ? ` (last output: ${last.trim().slice(0, 200)})` : ''}`);
  }
  return { stubs, bindDigests: extra.bindDigests };
}
