import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LbuildError } from '../errors.js';
import { lazyExeca } from '../util/exec.js';

export interface Credentials {
  username: string;
  password: string;
}

/**
 * Ask a Docker credential helper (`docker-credential-<name> get`, the host on stdin, JSON
 * `{Username, Secret}` on stdout), as docker does for `credsStore` / `credHelpers`. A helper that
 * knows nothing of the host answers with an error: no credentials, not a failure.
 */
async function fromHelper(name: string, host: string): Promise<Credentials | undefined> {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new LbuildError(`credential helper name ${JSON.stringify(name)} is not a program name`);
  const execa = await lazyExeca();
  const r = await execa(`docker-credential-${name}`, ['get'], { input: host, reject: false, timeout: 30_000 }).catch((e: unknown) => {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new LbuildError(`credential helper docker-credential-${name} is not installed (named in the Docker config for ${host})`);
    throw e;
  });
  if (r.failed && (r as { code?: string }).code === 'ENOENT') throw new LbuildError(`credential helper docker-credential-${name} is not installed (named in the Docker config for ${host})`);
  if (r.exitCode !== 0) return undefined;
  try {
    const out = JSON.parse(String(r.stdout)) as { Username?: unknown; Secret?: unknown };
    if (typeof out.Username === 'string' && typeof out.Secret === 'string' && out.Secret !== '') return { username: out.Username, password: out.Secret };
  } catch {
    throw new LbuildError(`credential helper docker-credential-${name} answered something that is not JSON`);
  }
  return undefined;
}

/**
 * Credentials from $DOCKER_CONFIG/config.json or ~/.docker/config.json: a `credHelpers` entry for
 * the host, else the `credsStore`, else `auths` entries (as docker reads them).
 */
export async function credentialsFor(host: string, env: NodeJS.ProcessEnv = process.env): Promise<Credentials | undefined> {
  const dir = env.DOCKER_CONFIG || path.join(os.homedir(), '.docker');
  let cfg: { auths?: Record<string, { auth?: string; username?: string; password?: string }>; credsStore?: string; credHelpers?: Record<string, string> };
  try {
    cfg = JSON.parse(await fsp.readFile(path.join(dir, 'config.json'), 'utf8')) as typeof cfg;
  } catch {
    return undefined;
  }
  const keys = host === 'docker.io' ? ['https://index.docker.io/v1/', 'docker.io', 'index.docker.io', 'registry-1.docker.io'] : [host, `https://${host}`, `http://${host}`];
  const helper = keys.map((k) => cfg.credHelpers?.[k]).find((h) => typeof h === 'string');
  if (helper) return fromHelper(helper, keys[0] as string);
  if (typeof cfg.credsStore === 'string' && cfg.credsStore !== '') {
    const found = await fromHelper(cfg.credsStore, keys[0] as string);
    if (found) return found;
  }
  for (const k of keys) {
    const e = cfg.auths?.[k];
    if (!e) continue;
    if (e.auth) {
      const dec = Buffer.from(e.auth, 'base64').toString('utf8');
      const colon = dec.indexOf(':');
      if (colon > 0) return { username: dec.slice(0, colon), password: dec.slice(colon + 1) };
    }
    if (e.username && e.password) return { username: e.username, password: e.password };
  }
  return undefined;
}

/** `Bearer realm="…",service="…",scope="…"` → its parameters. */
export function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const m = /^(\w+)\s*(.*)$/.exec(header.trim());
  const params: Record<string, string> = {};
  for (const p of (m?.[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) params[(p[1] as string).toLowerCase()] = p[2] as string;
  return { scheme: (m?.[1] ?? '').toLowerCase(), params };
}
