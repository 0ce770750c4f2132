import { makeMatcher } from '../../context/ignore.js';
import { type CopySource, WalkListing, cleanSource } from '../../context/select.js';
import { type ContentHasher, type SourcesDigest, plainHasher, sourcesDigest } from '../../context/checksum.js';
import type { CopyInstr, RunInstr } from '../../dockerfile/instructions.js';
import type { Stage } from '../../dockerfile/plan.js';
import { type Scope, expandInstruction } from '../../dockerfile/scope.js';
import { executeCopy } from '../copy.js';
import { DockerfileError } from '../../dockerfile/errors.js';
import { type FetchedUrl, fetchUrl, isHttpUrl } from '../url-source.js';
import { type GitSource, type ResolvedGit, checkoutGit, gitDisplay, parseGitSource, resolveGit } from '../git-source.js';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { tempName } from '../../util/fsx.js';
import { pauseForTests } from '../../util/testhooks.js';
import { traced } from '../../util/trace.js';
import { type PreparedStep, type StepEnv, type StepState, createdBy } from './step.js';

/** What a walk of the context for a COPY selects: its patterns and excludes (prefetch.ts). */
function walkPlan(patterns: readonly string[], exclude: readonly string[]): string {
  return JSON.stringify([patterns, exclude]);
}

function walkContext(ctx: CopySource, patterns: readonly string[], exclude: readonly string[], hasher: ContentHasher, listing: WalkListing | undefined, stopped?: () => boolean): Promise<SourcesDigest> {
  const sel = { ...(ctx.ignore ? { ignore: ctx.ignore } : {}), ...(exclude.length ? { exclude: makeMatcher([...exclude]) } : {}) };
  return sourcesDigest(ctx, patterns, sel, hasher, listing, stopped);
}

/**
 * Start the context walk of a COPY/ADD that copies from the build context (no --from, URL, git
 * source), with the variables as they are now: once the container of `after`, the RUN before it,
 * has started. Its prepare takes the walk if it selects the same files then.
 */
export function prefetchCopy(after: RunInstr, instr: CopyInstr, scope: Scope, env: StepEnv): void {
  const prefetch = env.prefetch;
  if (!prefetch || instr.from !== undefined) return;
  let patterns: string[];
  let exclude: readonly string[];
  try {
    const x = expandInstruction(instr, scope);
    if (x.kind === 'ADD' && x.sources.some((s) => isHttpUrl(s) || parseGitSource(s) !== undefined)) return;
    patterns = x.sources.filter((s) => !s.startsWith('<<')).map((s) => cleanSource(s, env.file, x.line));
    exclude = x.exclude;
  } catch {
    return; // its own prepare says what is wrong
  }
  if (patterns.length === 0) return;
  prefetch.start(after, instr, walkPlan(patterns, exclude), (stopped) =>
    traced('walk ahead', async () => {
      const listing = new WalkListing();
      const digest = await walkContext(await env.context(), patterns, exclude, env.statCache, listing, stopped);
      return { digest, listing };
    }),
  );
}

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
    digest = await walkContext(dirSource, patterns, x.exclude, hasher, listing);
  } else {
    // walked ahead while the step before ran, if it selects what this one does now
    const ahead = !git && urls.size === 0 ? env.prefetch?.take(instr, walkPlan(patterns, x.exclude)) : undefined;
    const walked = ahead ? await ahead : undefined;
    if (walked) {
      digest = walked.digest;
      listing = walked.listing;
    } else digest = await walkContext(await env.context(), patterns, x.exclude, hasher, listing);
  }
  // the step keeps the digest only: the file list (100,000s of entries) goes once the miss is explained
  const keyed = digest.digest;
  return {
    inputs: { parent: state.parent, epoch: state.epoch, op, args: {}, sources: keyed },
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
        return !layers && read.digest !== keyed ? { consumed: { sources: read.digest }, ...reused } : reused;
      } finally {
        listing = undefined;
        await opened.release();
      }
    },
  };
}
