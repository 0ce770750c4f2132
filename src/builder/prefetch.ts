import type { SourcesDigest } from '../context/checksum.js';
import type { WalkListing } from '../context/select.js';
import type { CopyInstr } from '../dockerfile/instructions.js';

/** What a COPY's walk of the context gave: its sources digest, and the listing its copy goes along. */
export interface WalkedSources {
  digest: SourcesDigest;
  listing: WalkListing;
}

/**
 * COPY keys computed ahead (issue 17.1): while a RUN runs, the main thread mostly waits on the
 * runtime, so the next step's walk and hashing of the context (the slow part of its key, and
 * independent of the RUN's result) is done then. A walk is taken only by the instruction it was
 * made for, and only if that instruction selects the same files when it is keyed (`plan`:
 * patterns and excludes); anything else is walked again. A prefetch that fails is dropped: the
 * step's own walk then raises the error where it belongs.
 */
export class SourcesPrefetch {
  private readonly pending = new Map<CopyInstr, { plan: string; result: Promise<WalkedSources | undefined>; dropped: boolean }>();
  private stopped = false;

  /** Start walking for `instr` (selecting `plan`); `walk` gets a function that says when to give up. */
  start(instr: CopyInstr, plan: string, walk: (stopped: () => boolean) => Promise<WalkedSources>): void {
    if (this.stopped || this.pending.has(instr)) return;
    const entry = { plan, result: Promise.resolve<WalkedSources | undefined>(undefined), dropped: false };
    entry.result = walk(() => this.stopped || entry.dropped).catch(() => undefined);
    this.pending.set(instr, entry);
  }

  /** The walk made ahead for `instr`, if it selected `plan`; each is taken once. */
  take(instr: CopyInstr, plan: string): Promise<WalkedSources | undefined> | undefined {
    const p = this.pending.get(instr);
    if (!p) return undefined;
    this.pending.delete(instr);
    if (p.plan === plan) return p.result;
    p.dropped = true;
    return undefined;
  }

  /** The build is over: walks still running stop at their next pause. */
  stop(): void {
    this.stopped = true;
    this.pending.clear();
  }
}
