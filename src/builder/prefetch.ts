import type { SourcesDigest } from '../context/checksum.js';
import type { WalkListing } from '../context/select.js';
import type { CopyInstr, RunInstr } from '../dockerfile/instructions.js';

/** What a COPY's walk of the context gave: its sources digest, and the listing its copy goes along. */
export interface WalkedSources {
  digest: SourcesDigest;
  listing: WalkListing;
}

interface Pending {
  /** the RUN whose container starts the walk */
  after: RunInstr;
  plan: string;
  dropped: boolean;
  launch: () => Promise<WalkedSources | undefined>;
  /** set once launched */
  result?: Promise<WalkedSources | undefined>;
}

/**
 * COPY keys computed ahead (issue 17.1): while a RUN runs, the main thread mostly waits on the
 * runtime, so the next step's walk and hashing of the context (the slow part of its key, and
 * independent of the RUN's result) is done then. A walk is taken only by the instruction it was
 * made for, and only if that instruction selects the same files when it is keyed (`plan`:
 * patterns and excludes); anything else is walked again. A prefetch that fails is dropped: the
 * step's own walk then raises the error where it belongs. A walk starts when the RUN's container
 * has (`open`), not when it is registered: the walk holds the main thread for a few ms at a time,
 * and the mount and runc start before the container are on the build's critical path.
 */
export class SourcesPrefetch {
  private readonly pending = new Map<CopyInstr, Pending>();
  private stopped = false;

  /**
   * Walk for `instr` (selecting `plan`) once `open(after)` is called; `walk` gets a function that
   * says when to give up.
   */
  start(after: RunInstr, instr: CopyInstr, plan: string, walk: (stopped: () => boolean) => Promise<WalkedSources>): void {
    if (this.stopped || this.pending.has(instr)) return;
    const entry: Pending = { after, plan, dropped: false, launch: () => walk(() => this.stopped || entry.dropped).catch(() => undefined) };
    this.pending.set(instr, entry);
  }

  /** `run`'s container has started: the walk registered for the step after it begins (another stage's waits for its own RUN). */
  open(run: RunInstr): void {
    for (const p of this.pending.values()) if (p.after === run) p.result ??= p.launch();
  }

  /**
   * The walk made ahead for `instr`, if it selected `plan`; each is taken once. One not begun
   * yet (its RUN was a cache hit) is not worth starting: the step walks itself.
   */
  take(instr: CopyInstr, plan: string): Promise<WalkedSources | undefined> | undefined {
    const p = this.pending.get(instr);
    if (!p) return undefined;
    this.pending.delete(instr);
    if (p.plan === plan && p.result) return p.result;
    p.dropped = true;
    return undefined;
  }

  /** The build is over: walks still running stop at their next pause. */
  stop(): void {
    this.stopped = true;
    this.pending.clear();
  }
}
