import { UsageError } from '../errors.js';
import { type Digest, isDigest } from './digest.js';

/** A parsed image reference, kept in the short ("familiar") form users type. */
export interface Reference {
  /** repository with optional registry host, e.g. `busybox`, `127.0.0.1:5000/busybox` */
  name: string;
  tag?: string;
  digest?: Digest;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const HOST = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$/;

export function parseReference(input: string): Reference {
  const bad = (why: string): never => {
    throw new UsageError(`invalid reference format ${JSON.stringify(input)}: ${why}`);
  };
  if (input === '') bad('empty');
  let rest = input;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const d = rest.slice(at + 1);
    if (!isDigest(d)) bad('digest must be sha256:<64 hex digits>');
    digest = d as Digest;
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) bad(`bad tag ${JSON.stringify(tag)}`);
  }
  const parts = rest.split('/');
  let start = 0;
  const first = parts[0] ?? '';
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase())) {
    if (!HOST.test(first)) bad(`bad registry host ${JSON.stringify(first)}`);
    start = 1;
  }
  for (const c of parts.slice(start)) {
    if (!COMPONENT.test(c)) bad(`repository name must be lowercase letters, digits and separators`);
  }
  const ref: Reference = { name: rest };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** `name:tag` with Docker's default tag. */
export function normalizeTag(input: string): string {
  const r = parseReference(input);
  if (r.digest) throw new UsageError(`a tag cannot contain a digest: ${input}`);
  return `${r.name}:${r.tag ?? 'latest'}`;
}

export function splitTag(nameTag: string): { repository: string; tag: string } {
  const colon = nameTag.lastIndexOf(':');
  return { repository: nameTag.slice(0, colon), tag: nameTag.slice(colon + 1) };
}
