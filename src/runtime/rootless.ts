import { spawn } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { LbuildError } from '../errors.js';

/*
 * Rootless builds. A user who is not root gets a user namespace of their own in which they are
 * root: uid/gid 0 is the user and 1..N their subordinate range from /etc/subuid and /etc/subgid,
 * written by the setuid newuidmap/newgidmap (Debian's uidmap) through util-linux's unshare. lbuild
 * then runs unchanged inside it, in a private mount namespace too: kernel overlay (≥ 5.11 in a
 * user namespace, with `userxattr`), chown to any image owner in the range, runc (which sees the
 * namespace and skips what needs real root) and slirp4netns. Files inside the store show the
 * image's owners, so layers are byte for byte a root build's.
 */

let cached: boolean | undefined;

/**
 * True inside a user namespace that does not map every id: lbuild's own rootless namespace, or
 * any rootless container it runs in. Overlay there needs `userxattr`, and so the opaque marker is
 * user.overlay.opaque.
 */
export function inUserNamespace(): boolean {
  if (cached === undefined) {
    let map = '';
    try {
      map = readFileSync('/proc/self/uid_map', 'utf8');
    } catch {
      map = '';
    }
    const lines = map.trim().split('\n').map((l) => l.trim().split(/\s+/));
    const identity = lines.length === 1 && lines[0]?.[0] === '0' && lines[0][1] === '0' && lines[0][2] === '4294967295';
    cached = map !== '' && !identity;
  }
  return cached;
}

/** The ids this namespace maps, in words ("0-65536"), for messages. */
export function mappedRange(): string {
  let top = -1;
  try {
    for (const line of readFileSync('/proc/self/uid_map', 'utf8').trim().split('\n')) {
      const [inner, , count] = line.trim().split(/\s+/).map(Number);
      if (inner !== undefined && count !== undefined) top = Math.max(top, inner + count - 1);
    }
  } catch {
    return 'unknown';
  }
  return `0-${top}`;
}

export interface SubIdRange {
  start: number;
  count: number;
}

/** The first range of `/etc/subuid`-shaped text for the user (by name or by uid). */
export function subIdRange(text: string, user: string, id: number): SubIdRange | undefined {
  for (const line of text.split('\n')) {
    const [who, start, count] = line.trim().split(':');
    if ((who === user || who === String(id)) && start !== undefined && count !== undefined) {
      const s = Number(start);
      const c = Number(count);
      if (Number.isSafeInteger(s) && Number.isSafeInteger(c) && c > 0) return { start: s, count: c };
    }
  }
  return undefined;
}

function readSysctl(p: string): string | undefined {
  try {
    return readFileSync(p, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function onPath(tool: string): boolean {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    try {
      accessSync(path.join(dir || '.', tool), constants.X_OK);
      return true;
    } catch {
      /* next */
    }
  }
  return false;
}

/** The unshare arguments for this user's namespace, or the one missing piece, in words. */
export function rootlessPlan(): string[] {
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const user = os.userInfo().username;
  if (readSysctl('/proc/sys/kernel/unprivileged_userns_clone') === '0' || readSysctl('/proc/sys/user/max_user_namespaces') === '0') {
    throw new LbuildError('rootless: unprivileged user namespaces are disabled on this machine (as root: sysctl -w kernel.unprivileged_userns_clone=1 user.max_user_namespaces=15000)');
  }
  for (const tool of ['newuidmap', 'newgidmap']) {
    if (!onPath(tool)) throw new LbuildError(`rootless: ${tool} is not installed (as root: apt-get install uidmap)`);
  }
  if (!onPath('unshare')) throw new LbuildError('rootless: unshare is not installed (as root: apt-get install util-linux)');
  const ranges: SubIdRange[] = [];
  for (const [file, id] of [['/etc/subuid', uid], ['/etc/subgid', gid]] as const) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      text = '';
    }
    const r = subIdRange(text, user, id);
    if (!r) {
      const flag = file === '/etc/subuid' ? '--add-subuids' : '--add-subgids';
      throw new LbuildError(`rootless: user ${user} has no subordinate ${file === '/etc/subuid' ? 'uid' : 'gid'} range in ${file} (as root: usermod ${flag} 100000-165535 ${user})`);
    }
    ranges.push(r);
  }
  const [u, g] = ranges as [SubIdRange, SubIdRange];
  return [
    '--user', '--mount', '--map-user=0', '--map-group=0',
    `--map-users=${u.start},1,${u.count}`, `--map-groups=${g.start},1,${g.count}`,
  ];
}

/** The fd on which an inner lbuild sees its outer one go away. */
const PARENT_FD = 3;

/**
 * Run this same command again inside the user's namespace and resolve to its exit code. The
 * inner process watches a pipe from this one: if this one is killed (even with SIGKILL), the
 * inner one stops as on SIGTERM, releasing its mounts and containers.
 */
export function runRootless(argv: readonly string[]): Promise<number> {
  const plan = rootlessPlan();
  const child = spawn('unshare', [...plan, '--', process.execPath, ...process.execArgv, ...argv], {
    stdio: ['inherit', 'inherit', 'inherit', 'pipe'],
    env: { ...process.env, LBUILD_PARENT_FD: String(PARENT_FD) },
  });
  const forward = (sig: NodeJS.Signals): void => {
    child.kill(sig);
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, forward);
  return new Promise((resolve) => {
    child.once('error', (e: NodeJS.ErrnoException) => {
      process.stderr.write(`lbuild: rootless: cannot start unshare: ${e.message}\n`);
      resolve(1);
    });
    child.once('close', (code, signal) => {
      for (const s of signals) process.off(s, forward);
      resolve(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1));
    });
  });
}

/** In the inner process: stop as on SIGTERM once the outer lbuild is gone. */
export function watchParent(): void {
  const fd = Number(process.env.LBUILD_PARENT_FD);
  delete process.env.LBUILD_PARENT_FD;
  if (!Number.isInteger(fd) || fd < 3) return;
  let sock: net.Socket;
  try {
    sock = new net.Socket({ fd, readable: true, writable: false });
  } catch {
    return;
  }
  sock.on('error', () => undefined);
  sock.once('close', () => process.kill(process.pid, 'SIGTERM'));
  sock.resume();
  sock.unref();
}

/** Whether this process must re-run itself in a user namespace: not root (inside lbuild's own one it is root). */
export function needsRootless(): boolean {
  return (process.getuid?.() ?? 0) !== 0;
}
