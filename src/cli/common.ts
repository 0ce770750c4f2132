import { isIP } from 'node:net';
import { UsageError } from '../errors.js';
import type { ExtraHost } from '../runtime/runc.js';
import { Snapshotter } from '../snapshot/overlay.js';
import { Store, defaultRoot } from '../store/store.js';

export interface GlobalArgs {
  root?: string;
  debug?: boolean;
}

/** Open the store; first release what killed lbuild processes left (mounts, containers, temp files). */
export async function openStore(argv: GlobalArgs): Promise<Store> {
  const store = await Store.open(argv.root ?? defaultRoot());
  await new Snapshotter(store).recoverStale();
  return store;
}

export function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

export function printJson(v: unknown): void {
  process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
}

export function notImplemented(what: string): never {
  throw new UsageError(`${what}: not implemented yet`);
}

/** `K=V` pairs (repeatable flags) → map; a bare `K` takes its value from the environment, as docker's --build-arg. */
export function parsePairs(list: readonly string[] | undefined, flag: string, fromEnv = false): Map<string, string> {
  const out = new Map<string, string>();
  for (const item of list ?? []) {
    const eq = item.indexOf('=');
    if (eq === 0) throw new UsageError(`${flag} ${JSON.stringify(item)}: missing name`);
    if (eq < 0) {
      if (!fromEnv) throw new UsageError(`${flag} ${JSON.stringify(item)}: expected KEY=VALUE`);
      const v = process.env[item];
      if (v !== undefined) out.set(item, v);
      continue;
    }
    out.set(item.slice(0, eq), item.slice(eq + 1));
  }
  return out;
}

/** --add-host NAME:IP (or NAME=IP), as Docker; an IPv6 address keeps its colons. */
export function parseAddHosts(list: readonly string[]): ExtraHost[] {
  return list.map((item) => {
    const at = item.includes('=') ? item.indexOf('=') : item.indexOf(':');
    const name = at > 0 ? item.slice(0, at) : '';
    const ip = at > 0 ? item.slice(at + 1).replace(/^\[(.*)\]$/, '$1') : '';
    if (!/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(name)) throw new UsageError(`--add-host ${JSON.stringify(item)}: expected NAME:IP`);
    if (ip === 'host-gateway') throw new UsageError(`--add-host ${JSON.stringify(item)}: host-gateway needs a daemon's bridge; give the host's address`);
    if (isIP(ip) === 0) throw new UsageError(`--add-host ${JSON.stringify(item)}: ${JSON.stringify(ip)} is not an IP address`);
    return { name, ip };
  });
}

/** All of standard input; `onTerminal` is the usage error when it is a terminal (nothing piped in). */
export async function readStdin(onTerminal: string): Promise<Buffer> {
  if (process.stdin.isTTY) throw new UsageError(onTerminal);
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export function asArray(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  return (Array.isArray(v) ? v : [v]).map(String);
}
