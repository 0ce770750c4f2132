import { readFileSync } from 'node:fs';
import { LbuildError } from '../errors.js';
import { resolveInRoot } from '../snapshot/rootpath.js';

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  home: string;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

function readInRoot(root: string, file: string): string {
  try {
    return readFileSync(resolveInRoot(root, file), 'utf8');
  } catch {
    return '';
  }
}

function parsePasswd(text: string): PasswdEntry[] {
  return text
    .split('\n')
    .map((l) => l.split(':'))
    .filter((f) => f.length >= 4 && f[0] !== '')
    .map((f) => ({ name: f[0] as string, uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? '/' }));
}

function parseGroup(text: string): { name: string; gid: number; members: string[] }[] {
  return text
    .split('\n')
    .map((l) => l.split(':'))
    .filter((f) => f.length >= 3 && f[0] !== '')
    .map((f) => ({ name: f[0] as string, gid: Number(f[2]), members: (f[3] ?? '').split(',').filter((m) => m !== '') }));
}

const NUMERIC = /^\d+$/;

/**
 * A Dockerfile USER (`name`, `uid`, `name:group`, `uid:gid`) resolved through the image's own
 * /etc/passwd and /etc/group (read inside the root, symlinks never leaving it).
 */
export function resolveUser(root: string, spec: string | undefined): ResolvedUser {
  const s = spec && spec !== '' ? spec : 'root';
  const colon = s.indexOf(':');
  const userPart = colon < 0 ? s : s.slice(0, colon);
  const groupPart = colon < 0 ? undefined : s.slice(colon + 1);
  const passwd = parsePasswd(readInRoot(root, '/etc/passwd'));
  const groups = parseGroup(readInRoot(root, '/etc/group'));
  let entry: PasswdEntry | undefined;
  let uid: number;
  if (NUMERIC.test(userPart)) {
    uid = Number(userPart);
    entry = passwd.find((p) => p.uid === uid);
  } else {
    entry = passwd.find((p) => p.name === userPart);
    if (!entry && userPart !== 'root') throw new LbuildError(`unable to find user ${userPart}: no matching entries in passwd file`);
    uid = entry?.uid ?? 0;
  }
  let gid = entry?.gid ?? 0;
  if (groupPart !== undefined && groupPart !== '') {
    if (NUMERIC.test(groupPart)) gid = Number(groupPart);
    else {
      const g = groups.find((x) => x.name === groupPart);
      if (!g) throw new LbuildError(`unable to find group ${groupPart}: no matching entries in group file`);
      gid = g.gid;
    }
  }
  // supplementary groups from /etc/group membership, only when no group was named (as Docker)
  const additionalGids =
    groupPart === undefined && entry
      ? groups.filter((g) => g.members.includes((entry as PasswdEntry).name) && g.gid !== gid).map((g) => g.gid)
      : [];
  return { uid, gid, additionalGids, home: entry?.home || '/' };
}

/** `--chown` value → uid/gid (names resolved in the destination image, as BuildKit). */
export function resolveChown(root: string, spec: string): { uid: number; gid: number } {
  const colon = spec.indexOf(':');
  const userPart = colon < 0 ? spec : spec.slice(0, colon);
  const groupPart = colon < 0 ? undefined : spec.slice(colon + 1);
  let uid: number;
  let gid: number;
  if (NUMERIC.test(userPart)) {
    uid = Number(userPart);
    gid = uid;
  } else {
    const e = parsePasswd(readInRoot(root, '/etc/passwd')).find((p) => p.name === userPart);
    if (!e) throw new LbuildError(`--chown=${spec}: unable to find user ${userPart}: no matching entries in passwd file`);
    uid = e.uid;
    gid = e.gid;
  }
  if (groupPart !== undefined && groupPart !== '') {
    if (NUMERIC.test(groupPart)) gid = Number(groupPart);
    else {
      const g = parseGroup(readInRoot(root, '/etc/group')).find((x) => x.name === groupPart);
      if (!g) throw new LbuildError(`--chown=${spec}: unable to find group ${groupPart}: no matching entries in group file`);
      gid = g.gid;
    }
  }
  return { uid, gid };
}
