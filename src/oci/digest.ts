import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { InvalidDigestError } from '../errors.js';

export type Digest = `sha256:${string}`;

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

export function isDigest(s: string): s is Digest {
  return DIGEST_RE.test(s);
}

/**
 * The one parser for digests that come from outside (archives, manifests, indexes, cache
 * records, registries): anything but `sha256:` and 64 lowercase hex digits is refused, so no
 * digest can name a path (`sha256:../../etc/passwd`) or an algorithm we do not verify.
 */
export function parseDigest(s: unknown, what: string): Digest {
  if (typeof s === 'string' && DIGEST_RE.test(s)) return s as Digest;
  throw new InvalidDigestError(what, s);
}

export function sha256(data: string | Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** sha256 of what flows through a stream, read when it has ended (the stream is consumed elsewhere). */
export function tapDigest(src: NodeJS.ReadableStream): () => Digest {
  const h = createHash('sha256');
  src.on('data', (c: Buffer) => h.update(c));
  return () => `sha256:${h.digest('hex')}`;
}

/** sha256 of a file, streamed. */
export async function fileDigest(file: string): Promise<Digest> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return `sha256:${h.digest('hex')}`;
}

/** The hex part, for file names: refuses anything that is not a digest, so no caller builds a path from one. */
export function hexOf(d: Digest): string {
  return parseDigest(d, 'digest').slice('sha256:'.length);
}

export function shortId(d: Digest): string {
  return hexOf(d).slice(0, 12);
}

/** ChainID(L0..Ln) = sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln)), per the OCI image spec. */
export function chainIds(diffIds: readonly Digest[]): Digest[] {
  const out: Digest[] = [];
  for (const d of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev === undefined ? d : sha256(`${prev} ${d}`));
  }
  return out;
}
