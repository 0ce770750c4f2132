import { closeSync, openSync, readSync } from 'node:fs';
import { ReuseConflict } from './reuse-conflict.js';

/** Bytes of a previous layer's tar read in one go at most (contiguous entries are merged up to this). */
export const MAX_RUN = 1 << 20;

interface Queued {
  rel: string;
  size: number;
  length: number;
}

/**
 * Reads byte ranges of a previous layer's tar (its unchanged entries), merging contiguous ones:
 * the files of a directory that did not change are one read, not one per file. Each entry read
 * is checked to be the file's header (name, size, a regular file) before it is passed on: an
 * index that does not match its tar gives a full copy, never a wrong layer.
 */
export class RangeCopier {
  private fd: number | undefined;
  private offset = 0;
  private entries: Queued[] = [];
  /** bytes queued and not yet taken */
  pending = 0;

  constructor(private readonly blob: string) {}

  /** Can an entry at `offset` be queued behind what is queued now? */
  continues(offset: number, length: number): boolean {
    return this.pending === 0 || (this.offset + this.pending === offset && this.pending + length <= MAX_RUN);
  }

  queue(offset: number, length: number, rel: string, size: number): void {
    if (!this.continues(offset, length)) throw new Error('take() the queued range first');
    if (this.pending === 0) this.offset = offset;
    this.pending += length;
    this.entries.push({ rel, size, length });
  }

  /** The queued bytes, read and checked; undefined when nothing is queued. */
  take(): Buffer | undefined {
    if (this.pending === 0) return undefined;
    this.fd ??= openSync(this.blob, 'r');
    const buf = Buffer.allocUnsafe(this.pending);
    for (let n = 0; n < buf.length; ) {
      const got = readSync(this.fd, buf, n, buf.length - n, this.offset + n);
      if (got === 0) throw new ReuseConflict('the previous layer is shorter than its file index says');
      n += got;
    }
    let at = 0;
    for (const e of this.entries) {
      if (!isEntryOf(buf.subarray(at, at + e.length), e.rel, e.size)) throw new ReuseConflict(`the previous layer's file index does not match its tar at ${e.rel}`);
      at += e.length;
    }
    this.pending = 0;
    this.entries = [];
    return buf;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

const BLOCK = 512;

function octal(b: Buffer, at: number, len: number): number {
  let v = 0;
  let i = at;
  while (i < at + len && b[i] === 0x20) i++;
  const start = i;
  for (; i < at + len; i++) {
    const c = b[i] as number;
    if (c < 0x30 || c > 0x37) break;
    v = v * 8 + (c - 0x30);
  }
  return i > start ? v : Number.NaN;
}

function checksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : (h[i] as number);
  return octal(h, 148, 8) === sum;
}

/** Does the ustar header name `rel` (its prefix and name fields joined)? */
function names(h: Buffer, rel: string): boolean {
  const want = Buffer.from(rel);
  const end = (at: number, len: number): number => {
    const nul = h.subarray(at, at + len).indexOf(0);
    return at + (nul < 0 ? len : nul);
  };
  const nameEnd = end(0, 100);
  if (h[345] === 0) return want.equals(h.subarray(0, nameEnd));
  const prefix = h.subarray(345, end(345, 155));
  return want.length === prefix.length + 1 + nameEnd && want.subarray(0, prefix.length).equals(prefix) && want[prefix.length] === 0x2f && want.subarray(prefix.length + 1).equals(h.subarray(0, nameEnd));
}

/** Is `bytes` one tar entry of the regular file `rel` of `size` bytes (a PAX header first allowed)? */
function isEntryOf(bytes: Buffer, rel: string, size: number): boolean {
  if (bytes.length < BLOCK) return false;
  let h = bytes.subarray(0, BLOCK);
  if (!checksumOk(h)) return false;
  let named = false;
  let at = 0;
  if (h[156] === 0x78) {
    // 'x': a PAX header, whose path record names the entry
    const paxSize = octal(h, 124, 12);
    if (!Number.isFinite(paxSize)) return false;
    named = bytes.subarray(BLOCK, BLOCK + paxSize).includes(Buffer.from(` path=${rel}\n`));
    at = BLOCK + Math.ceil(paxSize / BLOCK) * BLOCK;
    h = bytes.subarray(at, at + BLOCK);
    if (h.length < BLOCK || !checksumOk(h)) return false;
  }
  if (h[156] !== 0x30 && h[156] !== 0) return false;
  if (octal(h, 124, 12) !== size) return false;
  if (!named && !names(h, rel)) return false;
  return bytes.length === at + BLOCK + Math.ceil(size / BLOCK) * BLOCK;
}
