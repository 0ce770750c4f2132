import { makeMatcher } from '../../context/ignore.js';
import { WalkListing, cleanSource } from '../../context/select.js';
import { plainHasher, sourcesDigest } from '../../context/checksum.js';
import type { CopyInstr } from '../../dockerfile/instructions.js';
import type { Stage } from '../../dockerfile/plan.js';
import { expandInstruction } from '../../dockerfile/scope.js';
import { executeCopy } from '../copy.js';
import { DockerfileError } from '../../dockerfile/errors.js';
import { type FetchedUrl, fetchUrl, isHttpUrl } from '../url-source.js';
import { type GitSource, type ResolvedGit, checkoutGit, gitDisplay, parseGitSource, resolveGit } from '../git-source.js';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { tempName } from '../../util/fsx.js';
import { pauseForTests } from '../../util/testhooks.js';
import { type PreparedStep, type StepEnv, type StepState, createdBy } from './step.js';

/**
 * COPY and ADD. Keyed on the instruction after expansion and on the content of exactly what it
 * selects: from the context (through the stat cache), or from a stage or image (by content, not
 * by how that stage was built, so an unchanged stage output still hits).
 */
export async function prepareCopy(instr: CopyInstr, state: StepState, stage: Stage, env: StepEnv): Promise<PreparedStep> {
  const cfg = state.config.config;
  const x = expandInstruction(instr, state.scope);
  const workdir = cfg.WorkingDir || '/';
  // ADD <url>: fetched now, keyed by content (a URL string alone says nothing of what it serves)
  const what = `${env.file}:${x.line}: ADD`;
  // ADD <git URL>: the ref resolved to a commit now; the commit is the key
  const gitSrc = x.kind === 'ADD' ? x.sources.map(parseGitSource).find((g) => g !== undefined) : undefined;
  let git: { src: GitSource; resolved: ResolvedGit } | undefined;
  if (gitSrc) {
    if (x.sources.length !== 1) throw new DockerfileError(env.file, x.line, 'ADD of a git repository takes it as its only source');
    if (gitSrc.subdir?.split('/').includes('..')) throw new DockerfileError(env.file, x.line, `ADD ${gitDisplay(gitSrc)}: the subdirectory ${gitSrc.subdir} is outside the repository`);
    const resolved = await resolveGit(gitSrc, what);
    if (x.checksum !== undefined && !(x.checksum.length >= 7 && resolved.commit.startsWith(x.checksum))) {
      throw new DockerfileError(env.file, x.line, `ADD --checksum=${x.checksum}: ${gitDisplay(gitSrc)} is at commit ${resolved.commit}`);
    }
    git = { src: gitSrc, resolved };
  }
  const urls = new Map<string, FetchedUrl>();
  if (x.kind === 'ADD' && !git) for (const s of x.sources) if (isHttpUrl(s)) urls.set(s, await fetchUrl(env.store, s, x.checksum, what));
  if (x.checksum !== undefined && urls.size === 0 && !git) throw new DockerfileError(env.file, x.line, 'ADD --checksum is only for http(s) and git sources');
  const patterns = git ? [] : x.sources.filter((s) => !s.startsWith('<<') && !urls.has(s)).map((s) => cleanSource(s, env.file, x.line));
  // a --build-context directory is copied from as the build context is, not as layers
  const dirSource = x.from !== undefined ? env.namedDir(x.from) : undefined;
  const layers = x.from !== undefined && !dirSource ? await env.layerSource(x.from, x.line, stage) : undefined;
  const op: Record<string, unknown> = {
    kind: x.kind, sources: x.sources, dest: x.dest, workdir, chown: x.chown ?? null, chmod: x.chmod ?? null,
    exclude: x.exclude, parents: x.parents, heredocs: x.heredocs.map((h) => [h.name, h.content]), from: layers?.id ?? (dirSource ? `context:${x.from}` : null),
    ...(x.unpack !== undefined ? { unpack: x.unpack } : {}),
    ...(urls.size ? { urls: [...urls.values()].map((u) => [u.url, u.digest, u.name, u.lastModified ?? null]) } : {}),
    ...(git ? { git: [gitDisplay(git.src), git.resolved.commit, x.keepGitDir] } : {}),
  };
  // the context's files are hashed through its stat cache, for the key and the copy; others are read
  const hasher = layers || dirSource ? plainHasher : env.statCache;
  let digest: { digest: string; files?: Record<string, string> };
  // what the key's walk of a directory source saw, for the copy (dropped once it has run)
  let listing: WalkListing | undefined = layers ? undefined : new WalkListing();
  if (layers) digest = await env.layerSources.digest(layers, patterns, x.exclude);
  else if (dirSource) {
    // the stat cache is the main context's: another directory is hashed in full
    digest = await sourcesDigest(dirSource, patterns, x.exclude.length ? { exclude: makeMatcher(x.exclude) } : {}, hasher, listing);
  } else {
    const ctx = await env.context();
    const sel = { ...(ctx.ignore ? { ignore: ctx.ignore } : {}), ...(x.exclude.length ? { exclude: makeMatcher(x.exclude) } : {}) };
    digest = await sourcesDigest(ctx, patterns, sel, hasher, listing);
  }
  return {
    inputs: { parent: state.parent, epoch: state.epoch, op, args: {}, sources: digest.digest },
    ...(digest.files ? { files: digest.files } : {}),
    ...(layers ? { from: layers.what } : dirSource ? { from: dirSource.what } : {}),
    createdBy: createdBy(instr, cfg.Shell, state.scope),
    ...(x.kind === 'COPY' && !x.heredocs.length ? { incremental: true } : {}),
    execute: async (snap, _log, reuseFrom) => {
      if (git) {
        const dir = path.join(env.store.tmpDir, tempName('git'));
        try {
          await checkoutGit(git.src, git.resolved, dir, x.keepGitDir, what);
          const instr = { ...x, sources: [git.src.subdir ?? '.'], unpack: false };
          await executeCopy(instr, { root: dir, keepOwner: false, what: gitDisplay(git.src) }, { dest: snap.merged, workdir }, env.file);
        } finally {
          await fsp.rm(dir, { recursive: true, force: true });
        }
        return {};
      }
      // LBUILD_TEST_COPY_DELAY_MS: the tests edit the context between keying and copying
      await pauseForTests('COPY_DELAY');
      const opened = layers ? await env.layerSources.open(layers) : { source: dirSource ?? (await env.context()), release: async () => undefined };
      try {
        const fetched = new Map([...urls].map(([raw, u]) => [raw, { file: env.store.content.path(u.digest), name: u.name, ...(u.lastModified ? { lastModified: u.lastModified } : {}) }]));
        const reuse = reuseFrom ? { reuse: { prev: reuseFrom, upper: snap.upper } } : {};
        const read = await executeCopy(x, opened.source, { dest: snap.merged, workdir, urls: fetched, hasher, ...(listing ? { listing } : {}), ...reuse }, env.file);
        const reused = read.reused ? { reused: read.reused } : {};
        // layers cannot change; the context can, between keying and copying
        return !layers && read.digest !== digest.digest ? { consumed: { sources: read.digest }, ...reused } : reused;
      } finally {
        listing = undefined;
        await opened.release();
      }
    },
  };
}
