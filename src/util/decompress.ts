import { lazyExeca } from './exec.js';
import { open } from 'node:fs/promises';
import { PassThrough, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';

export type Compression = 'none' | 'gzip' | 'bzip2' | 'xz' | 'zstd';

/** Detect compression from the first bytes (as Docker does for ADD and layers: by content). */
export function sniffCompression(head: Uint8Array): Compression {
  const b = Buffer.from(head);
  if (b.length >= 3 && b[0] === 0x1f && b[1] === 0x8b && b[2] === 0x08) return 'gzip';
  if (b.length >= 3 && b.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  if (b.length >= 6 && b.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (b.length >= 4 && b.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

export async function sniffFile(file: string): Promise<Compression> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(8);
    const { bytesRead } = await fh.read(buf, 0, 8, 0);
    return sniffCompression(buf.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}

/** A stream of the uncompressed bytes; bzip2/xz/zstd go through the system tools. */
export function decompress(src: Readable, kind: Compression): Readable {
  switch (kind) {
    case 'none':
      return src;
    case 'gzip': {
      const gunzip = createGunzip();
      src.on('error', (e) => gunzip.destroy(e));
      return src.pipe(gunzip);
    }
    default: {
      const tool = kind === 'bzip2' ? 'bzip2' : kind === 'xz' ? 'xz' : 'zstd';
      const out = new PassThrough();
      src.on('error', (e) => out.destroy(e));
      void lazyExeca().then((execa) => {
        const child = execa(tool, ['-dc'], { stdin: 'pipe', stdout: 'pipe', stderr: 'pipe', buffer: false });
        child.stdin.on('error', () => undefined); // EPIPE when the tool stops early: its exit says why
        src.pipe(child.stdin);
        // the output ends only when the tool has said it succeeded: a truncated archive makes it
        // exit non-zero after writing what it could, which must be an error, not a short stream
        child.stdout.pipe(out, { end: false });
        child.then(
          () => out.end(),
          (e: unknown) => {
            const err = (e as { stderr?: unknown }).stderr;
            out.destroy(new Error(`${tool} -dc failed: ${typeof err === 'string' && err.trim() ? err.trim().split('\n')[0] : ((e as { shortMessage?: string }).shortMessage ?? String(e))}`));
          },
        );
      }, (e: unknown) => out.destroy(e as Error));
      return out;
    }
  }
}
