import { lstatSync, chmodSync, lutimesSync, readdirSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { LbuildError } from '../errors.js';
import { lazyExeca } from '../util/exec.js';
import { exists } from '../util/fsx.js';

/*
 * ADD <git URL>#<ref>:<subdir>, with the system git. The ref is resolved to a commit when the
 * step is keyed (`git ls-remote`; a full commit id needs no network), and the key holds that
 * commit: a moved branch misses, an unchanged one hits. The checkout is normalized so that the
 * commit alone decides the bytes: modes 0644/0755 (as a umask-022 checkout), every mtime the
 * commit's time (BuildKit's `mtime=commit`), no .git unless --keep-git-dir.
 */

export interface GitSource {
  /** the repository URL, without the fragment */
  remote: string;
  ref?: string;
  subdir?: string;
}

/** As BuildKit tells a git source from a file URL: git transports, `git@`, or a path ending `.git`. */
export function parseGitSource(s: string): GitSource | undefined {
  const hash = s.indexOf('#');
  const remote = hash < 0 ? s : s.slice(0, hash);
  const fragment = hash < 0 ? '' : s.slice(hash + 1);
  const isGit =
    /^(git|ssh):\/\//i.test(remote) || /^git@[^:/]+:/.test(remote) || (/^https?:\/\//i.test(remote) && /\.git\/?$/.test(new URL(remote).pathname));
  if (!isGit) return undefined;
  const colon = fragment.indexOf(':');
  const ref = colon < 0 ? fragment : fragment.slice(0, colon);
  const subdir = colon < 0 ? '' : fragment.slice(colon + 1).replace(/^\/+|\/+$/g, '');
  return { remote, ...(ref ? { ref } : {}), ...(subdir ? { subdir } : {}) };
}

export function gitDisplay(g: GitSource): string {
  // credentials in a URL never appear in messages
  const shown = g.remote.replace(/^(\w+:\/\/)[^/@]*@/, '$1');
  return `${shown}${g.ref || g.subdir ? `#${g.ref ?? ''}${g.subdir ? `:${g.subdir}` : ''}` : ''}`;
}

/**
 * What git may do here: only network transports (`ext::` would run a command, `file://` read the
 * host), never prompt, never run the user's hooks.
 */
const GIT_ENV = { GIT_ALLOW_PROTOCOL: 'git:http:https:ssh', GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: '/bin/false', SSH_ASKPASS: '/bin/false' };
const GIT_CONFIG = ['-c', 'core.hooksPath=/dev/null', '-c', 'advice.detachedHead=false', '-c', 'core.symlinks=true'];

async function git(args: string[], what: string, opts: { cwd?: string; timeoutMs?: number } = {}): Promise<string> {
  const execa = await lazyExeca();
  const r = await execa('git', [...GIT_CONFIG, ...args], {
    reject: false,
    stdin: 'ignore',
    env: GIT_ENV,
    timeout: opts.timeoutMs ?? 600_000,
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
  }).catch((e: unknown) => {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new LbuildError(`${what}: git is not installed (Debian: apt-get install git)`);
    throw e;
  });
  if (r.timedOut) throw new LbuildError(`${what}: git ${args[0]} timed out`);
  if (r.exitCode !== 0) {
    // git's first fatal line names the cause; the lines after it are consequences
    const lines = r.stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '');
    const cause = lines.find((l) => l.startsWith('fatal:')) ?? lines.pop() ?? `exit ${r.exitCode}`;
    throw new LbuildError(`${what}: git ${args[0]}: ${cause.replace(/^fatal: /, '')}`);
  }
  return r.stdout;
}

export interface ResolvedGit {
  commit: string;
  /** what to fetch: the ref as the remote names it (or the commit itself) */
  fetch: string;
}

/** The commit a ref names now: a branch, a tag (peeled), any full ref, or HEAD. */
export async function resolveGit(g: GitSource, what: string): Promise<ResolvedGit> {
  const ref = g.ref ?? 'HEAD';
  if (/^[0-9a-f]{40}$/.test(ref)) return { commit: ref, fetch: ref };
  const out = await git(['ls-remote', '--', g.remote], what, { timeoutMs: 120_000 });
  const refs = new Map<string, string>();
  for (const line of out.split('\n')) {
    const [sha, name] = line.split('\t');
    if (sha && name && /^[0-9a-f]{40}$/.test(sha)) refs.set(name, sha);
  }
  for (const name of ref === 'HEAD' ? ['HEAD'] : [`refs/heads/${ref}`, `refs/tags/${ref}`, ref]) {
    const sha = refs.get(`${name}^{}`) ?? refs.get(name);
    if (sha) return { commit: sha, fetch: name };
  }
  throw new LbuildError(`${what}: ${gitDisplay(g)}: no branch, tag or ref named ${ref}`);
}

/**
 * Fetch the commit into `dir` (a new directory) and check it out there. A shallow fetch first;
 * remotes that cannot (dumb HTTP) are fetched whole. The fetched commit must be the keyed one.
 */
export async function checkoutGit(g: GitSource, r: ResolvedGit, dir: string, keepGitDir: boolean, what: string): Promise<void> {
  await fsp.mkdir(dir, { recursive: true });
  await git(['init', '-q', '--template=', dir], what);
  try {
    await git(['fetch', '-q', '--depth=1', '--no-tags', '--', g.remote, r.fetch], what, { cwd: dir });
  } catch {
    await git(['fetch', '-q', '--no-tags', '--', g.remote, r.fetch], what, { cwd: dir });
  }
  const got = (await git(['rev-parse', 'FETCH_HEAD^{commit}'], what, { cwd: dir })).trim();
  if (got !== r.commit) throw new LbuildError(`${what}: ${gitDisplay(g)} moved while building (keyed ${r.commit.slice(0, 12)}, fetched ${got.slice(0, 12)}): build again`);
  await git(['checkout', '-q', '--detach', r.commit], what, { cwd: dir });
  if (await exists(path.join(dir, '.gitmodules'))) await git(['submodule', 'update', '-q', '--init', '--recursive', '--depth=1'], what, { cwd: dir });
  const time = Number((await git(['show', '-s', '--format=%ct', r.commit], what, { cwd: dir })).trim());
  if (!keepGitDir) await fsp.rm(path.join(dir, '.git'), { recursive: true, force: true });
  normalizeTree(dir, new Date(time * 1000));
}

/** Modes as git means them (0755 or 0644, directories 0755) and one mtime for everything. */
function normalizeTree(dir: string, mtime: Date): void {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    const st = lstatSync(p);
    if (st.isDirectory()) normalizeTree(p, mtime);
    if (!st.isSymbolicLink()) chmodSync(p, st.isDirectory() || (st.mode & 0o100) !== 0 ? 0o755 : 0o644);
    lutimesSync(p, mtime, mtime);
  }
  chmodSync(dir, 0o755);
  lutimesSync(dir, mtime, mtime);
}
