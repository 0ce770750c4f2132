import { UsageError } from '../errors.js';
import { parseReference } from '../oci/reference.js';

/** A reference resolved the way Docker resolves it: `ubuntu` → docker.io/library/ubuntu:latest. */
export interface RemoteRef {
  /** registry host[:port] as users write it (docker.io for Docker Hub) */
  host: string;
  /** where requests go (registry-1.docker.io for Docker Hub) */
  endpoint: string;
  repository: string;
  tag?: string;
  digest?: string;
  /** the reference with its tag or digest, for messages and local tags */
  display: string;
}

export function isLoopback(host: string): boolean {
  const h = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}

export function resolveRemote(input: string): RemoteRef {
  const r = parseReference(input);
  const parts = r.name.split('/');
  const first = parts[0] ?? '';
  const hasHost = parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost');
  let host = hasHost ? first : 'docker.io';
  if (host === 'index.docker.io') host = 'docker.io';
  let repository = hasHost ? parts.slice(1).join('/') : r.name;
  if (host === 'docker.io' && !repository.includes('/')) repository = `library/${repository}`;
  if (repository === '') throw new UsageError(`${input}: no repository name`);
  const tag = r.digest ? r.tag : (r.tag ?? 'latest');
  const display = `${r.name}${tag ? `:${tag}` : ''}${r.digest ? `@${r.digest}` : ''}`;
  return {
    host,
    endpoint: host === 'docker.io' ? 'registry-1.docker.io' : host,
    repository,
    ...(tag ? { tag } : {}),
    ...(r.digest ? { digest: r.digest } : {}),
    display,
  };
}
