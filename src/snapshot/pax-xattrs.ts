import { Transform, type TransformCallback } from 'node:stream';
import type { Xattrs } from '../util/xattr.js';

const BLOCK = 512;
const META_TYPES = new Set([0x78 /* x */, 0x67 /* g */, 0x4c /* L */, 0x4b /* K */]);

function size(header: Buffer): number {
  if ((header[124] as number) & 0x80) {
    // base-256 (GNU): big-endian in the remaining bytes
    let n = 0;
    for (let i = 125; i < 136; i++) n = n * 256 + (header[i] as number);
    return n;
  }
  return Number.parseInt(header.subarray(124, 136).toString('latin1').replace(/\0.*$/, '').trim() || '0', 8);
}

/** The raw SCHILY.xattr.* records of a PAX header body (values are bytes; tar-stream reads them as text). */
function xattrRecords(body: Buffer): Xattrs {
  const out: Xattrs = [];
  let off = 0;
  while (off < body.length) {
    const sp = body.indexOf(0x20, off);
    if (sp < 0) break;
    const len = Number.parseInt(body.subarray(off, sp).toString('latin1'), 10);
    if (!Number.isFinite(len) || len <= 0 || off + len > body.length) break;
    const rec = body.subarray(sp + 1, off + len - 1); // without the trailing \n
    const eq = rec.indexOf(0x3d);
    if (eq > 0) {
      const key = rec.subarray(0, eq).toString('utf8');
      if (key.startsWith('SCHILY.xattr.')) out.push([key.slice('SCHILY.xattr.'.length), Buffer.from(rec.subarray(eq + 1))]);
    }
    off += len;
  }
  return out;
}

/**
 * A pass-through over a tar stream that reads its headers on the way: for each entry tar-stream
 * will emit (not the PAX/GNU meta entries), the extended attributes its PAX header gave, byte
 * for byte, queued in order. The extractor takes one per entry.
 */
export class XattrTap extends Transform {
  readonly queue: (Xattrs | undefined)[] = [];
  private held = Buffer.alloc(0);
  private skip = 0;
  private collect: { left: number; parts: Buffer[]; padding: number } | undefined;
  private pending: Xattrs | undefined;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.parse(chunk);
    cb(null, chunk);
  }

  private parse(chunk: Buffer): void {
    let buf = this.held.length ? Buffer.concat([this.held, chunk]) : chunk;
    for (;;) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, buf.length);
        this.skip -= n;
        buf = buf.subarray(n);
        if (this.skip > 0) break;
      }
      if (this.collect) {
        const n = Math.min(this.collect.left, buf.length);
        this.collect.parts.push(buf.subarray(0, n));
        this.collect.left -= n;
        buf = buf.subarray(n);
        if (this.collect.left > 0) break;
        this.pending = [...(this.pending ?? []), ...xattrRecords(Buffer.concat(this.collect.parts))];
        this.skip = this.collect.padding;
        this.collect = undefined;
        continue;
      }
      if (buf.length < BLOCK) break;
      const header = buf.subarray(0, BLOCK);
      buf = buf.subarray(BLOCK);
      if (header.every((b) => b === 0)) continue;
      const type = header[156] as number;
      const n = size(header);
      const padded = Math.ceil(n / BLOCK) * BLOCK;
      if (type === 0x78) this.collect = { left: n, parts: [], padding: padded - n };
      else if (META_TYPES.has(type)) this.skip = padded;
      else {
        this.queue.push(this.pending);
        this.pending = undefined;
        this.skip = padded;
      }
    }
    this.held = Buffer.from(buf);
  }
}
