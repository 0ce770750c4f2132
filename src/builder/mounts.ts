import { lstatSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { MountSpec } from '../dockerfile/instructions.js';
import { DockerfileError } from '../dockerfile/errors.js';
import { sha256 } from '../oci/digest.js';
import type { Mount } from '../runtime/runc.js';
import { resolveInRoot } from '../snapshot/rootpath.js';
import { type CopySource, copyContextView } from './copy.js';
import { cleanSource } from '../context/select.js';
import { tempName } from '../util/fsx.js';
import { mountTmpfs, unmount } from '../snapshot/overlay.js';
import type { SshAgents } from './ssh-agent.js';
import { layout } from '../store/layout.js';

/** `--secret id=X,src=FILE` or `id=X,env=VAR`. */
export interface SecretSource {
  id: string;
  file?: string;
  env?: string;
}

export function parseSecret(spec: string): SecretSource {
  const kv: Record<string, string> = {};
  for (const p of spec.split(',')) {
    const eq = p.indexOf('=');
    if (eq > 0) kv[p.slice(0, eq)] = p.slice(eq + 1);
  }
  const id = kv.id;
  if (!id) throw new Error(`--secret ${spec}: id= is required`);
  const file = kv.src ?? kv.source;
  if (file) return { id, file };
  if (kv.env) return { id, env: kv.env };
  // `--secret id=X` alone reads the environment variable X, as buildx does
  return { id, env: id };
}

export interface MountContext {
  file: string;
  line: number;
  store: { root: string; tmpDir: string };
  /** the build context, with its .dockerignore: bind mounts see a filtered private copy */
  context: CopySource;
  secrets: ReadonlyMap<string, SecretSource>;
  /** a read-only root for `from=`: a stage or image */
  view(from: string): Promise<{ root: string; release(): Promise<void> }>;
  /** the build's --ssh agents */
  ssh?: SshAgents;
}

export interface PreparedMounts {
  mounts: Mount[];
  /** mount targets (and their missing parents) the runtime will create in the root: removed after */
  stubs: string[];
  /** environment variables for the RUN only (secret mounts with env=): never in the config */
  env: [string, string][];
  /** per bind mount, in order: the digest of what a context bind's copy holds (undefined for from=) */
  bindDigests: (string | undefined)[];
  release(): Promise<void>;
}

/** What a mount contributes to the step's cache key: never a secret's value, only its id. */
export function mountKey(m: MountSpec): Record<string, string> {
  const o = m.options;
  switch (m.type) {
    case 'secret':
      return { type: 'secret', id: o.id ?? '', target: o.target ?? '', env: o.env ?? '' };
    case 'cache':
      return { type: 'cache', target: o.target ?? '', id: o.id ?? o.target ?? '' };
    case 'tmpfs':
      return { type: 'tmpfs', target: o.target ?? '', size: o.size ?? '' };
    case 'ssh':
      return { type: 'ssh', id: o.id ?? 'default', target: o.target ?? '' };
    default:
      return { type: m.type, target: o.target ?? '', source: o.source ?? '', from: o.from ?? '', rw: o.rw ?? o.readwrite ?? '' };
  }
}

/** A secret's value, from its file or environment variable; undefined when it was not given. */
async function readSecret(id: string, src: SecretSource | undefined, err: (m: string) => never): Promise<Buffer | undefined> {
  if (!src) return undefined;
  if (src.env !== undefined) {
    const value = process.env[src.env];
    if (value === undefined) err(`secret ${id}: environment variable ${src.env} is not set`);
    return Buffer.from(value as string);
  }
  const st = await fsp.stat(src.file as string).catch(() => undefined);
  if (!st?.isFile()) err(`secret ${id}: ${src.file} is not a readable file`);
  return fsp.readFile(src.file as string);
}

/**
 * What a failing RUN printed may hold a secret: every value given with --secret is replaced by
 * `****` before the output reaches an error message, a report or the build history.
 */
export async function secretRedactor(secrets: ReadonlyMap<string, SecretSource>): Promise<(text: string) => string> {
  const values: string[] = [];
  for (const [id, src] of secrets) {
    const v = await readSecret(id, src, (m) => {
      throw new Error(m);
    }).catch(() => undefined);
    const text = v?.toString('utf8').trim();
    if (text && text.length >= 3) values.push(text, ...text.split('\n').map((l) => l.trim()).filter((l) => l.length >= 3));
  }
  values.sort((a, b) => b.length - a.length);
  return (text) => values.reduce((t, v) => t.split(v).join('****'), text);
}

function missingFrom(root: string, target: string): string[] {
  const out: string[] = [];
  const parts = target.split('/').filter((p) => p !== '');
  for (let i = 1; i <= parts.length; i++) {
    const abs = resolveInRoot(root, `/${parts.slice(0, i).join('/')}`, false);
    try {
      lstatSync(abs);
    } catch {
      out.push(path.relative(root, abs));
    }
  }
  return out;
}

/**
 * RUN --mount: secrets (read-only files, only during this RUN), cache dirs (persistent per store,
 * never in a layer), bind mounts from the context or a stage (read-only), tmpfs.
 */
export async function prepareMounts(specs: readonly MountSpec[], root: string, workdir: string, ctx: MountContext): Promise<PreparedMounts> {
  const mounts: Mount[] = [];
  const stubs: string[] = [];
  const env: [string, string][] = [];
  const bindDigests: (string | undefined)[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  const err = (m: string): never => {
    throw new DockerfileError(ctx.file, ctx.line, m);
  };
  try {
    let sshMounts = 0;
    for (const m of specs) {
      const o = m.options;
      if (m.type === 'ssh') {
        const id = o.id ?? 'default';
        const n = sshMounts++;
        if (!ctx.ssh?.has(id)) {
          if (o.required === 'true') err(`ssh ${id} is required but was not given (--ssh ${id})`);
          continue;
        }
        const sshTarget = o.target ? path.posix.resolve(workdir, o.target) : `/run/buildkit/ssh_agent.${n}`;
        stubs.push(...missingFrom(root, sshTarget));
        const relay = await ctx.ssh.relay(id, { uid: Number(o.uid ?? 0), gid: Number(o.gid ?? 0), mode: o.mode ? Number.parseInt(o.mode, 8) & 0o777 : 0o600 });
        cleanups.push(relay.close);
        mounts.push({ destination: sshTarget, type: 'bind', source: relay.socket, options: ['rbind', 'nosuid', 'nodev', 'noexec'] });
        if (!env.some(([k]) => k === 'SSH_AUTH_SOCK')) env.push(['SSH_AUTH_SOCK', sshTarget]);
        continue;
      }
      // a secret with env= and no target is only an environment variable (BuildKit)
      const envOnly = m.type === 'secret' && o.env !== undefined && o.target === undefined;
      const target = o.target ? path.posix.resolve(workdir, o.target) : m.type === 'secret' ? `/run/secrets/${o.id ?? ''}` : m.type === 'bind' || m.type === 'cache' ? path.posix.resolve('/', workdir) : '';
      if (target === '' || target === '/') err(`--mount=type=${m.type}: a target other than / is required`);
      if (!envOnly) stubs.push(...missingFrom(root, target));
      if (m.type === 'secret') {
        const id = o.id ?? path.posix.basename(target);
        const value = await readSecret(id, ctx.secrets.get(id), err);
        if (value === undefined) {
          if (o.required === 'true') err(`secret ${id} is required but was not given (--secret id=${id},src=FILE)`);
          continue;
        }
        if (o.env !== undefined) env.push([o.env, value.toString('utf8')]);
        if (envOnly) continue;
        // a private copy, 0400 (or mode=) and root's (or uid=/gid=), whatever the host file's mode,
        // on a tmpfs of its own: a secret never reaches a disk, even if lbuild is killed
        const dir = path.join(ctx.store.tmpDir, tempName('secret'));
        await fsp.mkdir(dir, { mode: 0o700 });
        cleanups.push(() => fsp.rm(dir, { recursive: true, force: true }));
        await mountTmpfs(dir, value.length);
        cleanups.push(() => unmount(dir));
        const file = path.join(dir, 'value');
        await fsp.writeFile(file, value, { mode: 0o400 });
        await fsp.chown(file, Number(o.uid ?? 0), Number(o.gid ?? 0));
        await fsp.chmod(file, o.mode ? Number.parseInt(o.mode, 8) & 0o7777 : 0o400);
        mounts.push({ destination: target, type: 'bind', source: file, options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'] });
      } else if (m.type === 'cache') {
        const id = o.id ?? target;
        const dir = path.join(layout.mounts(ctx.store.root), sha256(id).slice(7, 31));
        if (!(await fsp.stat(dir).catch(() => undefined))) {
          await fsp.mkdir(dir, { recursive: true, mode: o.mode ? Number.parseInt(o.mode, 8) : 0o755 });
          await fsp.chown(dir, Number(o.uid ?? 0), Number(o.gid ?? 0));
        }
        mounts.push({ destination: target, type: 'bind', source: dir, options: ['rbind', o.ro === 'true' || o.readonly === 'true' ? 'ro' : 'rw'] });
      } else if (m.type === 'tmpfs') {
        mounts.push({ destination: target, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', ...(o.size ? [`size=${o.size}`] : [])] });
      } else {
        // rw: the RUN may write, and its writes are thrown away after it (BuildKit): always a copy
        const rw = o.rw === 'true' || o.readwrite === 'true';
        let source: string;
        if (o.from) {
          const v = await ctx.view(o.from);
          cleanups.push(v.release);
          source = resolveInRoot(v.root, o.source ?? '/', true);
          if (!(await fsp.stat(source).catch(() => undefined))) err(`--mount=type=bind: ${o.source ?? '/'} not found in stage ${o.from}`);
          if (rw) {
            const copy = path.join(ctx.store.tmpDir, tempName('bind'));
            cleanups.push(() => fsp.rm(copy, { recursive: true, force: true }));
            await copyContextView({ root: v.root, keepOwner: true, what: `stage ${o.from}` }, cleanSource(o.source ?? '/', ctx.file, ctx.line), copy);
            source = copy;
          }
          bindDigests.push(undefined);
        } else {
          // never the live context: a copy without what .dockerignore excludes
          source = path.join(ctx.store.tmpDir, tempName('bind'));
          const dir = source;
          cleanups.push(() => fsp.rm(dir, { recursive: true, force: true }));
          try {
            bindDigests.push((await copyContextView(ctx.context, cleanSource(o.source ?? '/', ctx.file, ctx.line), source)).digest);
          } catch (e) {
            if (e instanceof DockerfileError) throw e;
            err(`--mount=type=bind: ${o.source ?? '/'} not found in the build context`);
          }
        }
        mounts.push({ destination: target, type: 'bind', source, options: ['rbind', rw ? 'rw' : 'ro'] });
      }
    }
  } catch (e) {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    throw e;
  }
  return {
    mounts,
    stubs,
    env,
    bindDigests,
    // last made, first undone (a secret's tmpfs is unmounted before its directory goes)
    release: async () => {
      for (const c of cleanups.reverse()) await c().catch(() => undefined);
    },
  };
}
