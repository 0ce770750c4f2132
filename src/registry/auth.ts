import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface Credentials {
  username: string;
  password: string;
}

/** Credentials from $DOCKER_CONFIG/config.json or ~/.docker/config.json (`auths` entries). */
export async function credentialsFor(host: string, env: NodeJS.ProcessEnv = process.env): Promise<Credentials | undefined> {
  const dir = env.DOCKER_CONFIG || path.join(os.homedir(), '.docker');
  let cfg: { auths?: Record<string, { auth?: string; username?: string; password?: string }> };
  try {
    cfg = JSON.parse(await fsp.readFile(path.join(dir, 'config.json'), 'utf8')) as typeof cfg;
  } catch {
    return undefined;
  }
  const keys = host === 'docker.io' ? ['https://index.docker.io/v1/', 'docker.io', 'index.docker.io', 'registry-1.docker.io'] : [host, `https://${host}`, `http://${host}`];
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
