import type { ResultPromise } from 'execa';
import { lazyExeca } from '../util/exec.js';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { LbuildError } from '../errors.js';
import { tempName } from '../util/fsx.js';
import { defaultSeccomp } from './seccomp.js';
import { startPrivateNetwork, type PrivateNetwork } from './network.js';
import { inUserNamespace } from './rootless.js';

/*
 * RUN executes under runc (Debian's package), the OCI runtime Docker itself uses: it gives new
 * mount, PID, IPC, UTS and network namespaces (the host's network only with --network host),
 * pivot_root into the merged overlay, /proc, a minimal /dev, Docker's default capability set and masked /proc paths,
 * without a daemon. crun fails on this machine kind's cgroup v1 hybrid; runc does not.
 */

export const DEFAULT_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

/** Every capability this process may pass on (its bounding set): a container cannot get more. */
async function heldCaps(): Promise<string[]> {
  const status = await fsp.readFile('/proc/self/status', 'utf8').catch(() => '');
  const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(status);
  const mask = m ? BigInt(`0x${m[1]}`) : 0n;
  return ALL_CAPS.filter((_, bit) => (mask >> BigInt(bit)) & 1n);
}

/** Every capability (Linux 5.9+) in bit order, for RUN --security=insecure only. */
const ALL_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW',
  'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD',
  'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG',
  'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const HOSTNAME = 'buildkitsandbox';

export interface Mount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

export interface RunSpec {
  /** the merged root filesystem */
  root: string;
  args: string[];
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  additionalGids: number[];
  network: 'default' | 'none' | 'host';
  /** --add-host entries, appended to /etc/hosts */
  extraHosts?: readonly ExtraHost[];
  extraMounts?: Mount[];
  /** called with each line the command prints (stdout and stderr) */
  onLine?: (line: string) => void;
  /** called once runc has been started (work that may now overlap the container's) */
  onStarted?: () => void;
  /** give the container the caller's stdout/stderr (lbuild run) instead of piping its output */
  inheritStdio?: boolean;
  /** with inheritStdio: the caller's stdin too (run -i) */
  interactive?: boolean;
  /** a pseudo-terminal for the command (run -t): runc relays it to the caller's terminal */
  terminal?: boolean;
  readonlyRoot?: boolean;
  /**
   * RUN --security=insecure (allowed with --allow security.insecure): every capability and no
   * seccomp filter. Otherwise Docker's default capabilities and Docker's default seccomp profile.
   */
  insecure?: boolean;
}

export interface ExtraHost {
  name: string;
  ip: string;
}

export interface RunResult {
  exitCode: number;
  /** the last lines of output, for error messages */
  tail: string[];
}

/**
 * The mount points the sandbox adds over the root: they must never end up in a layer. Rootless on
 * the host's network, sysfs cannot be mounted (its network namespace is not the user
 * namespace's): the host's /sys is bound read-only instead, as rootless runc does.
 */
export function sandboxMounts(bundle: string, bindSys = false): Mount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    bindSys
      ? { destination: '/sys', type: 'bind', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] }
      : { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/etc/hosts', type: 'bind', source: path.join(bundle, 'hosts'), options: ['rbind', 'ro'] },
    { destination: '/etc/resolv.conf', type: 'bind', source: path.join(bundle, 'resolv.conf'), options: ['rbind', 'ro'] },
  ];
}

/**
 * The container's resolv.conf. On the host's network it is the host's. In a private namespace a
 * loopback resolver (systemd-resolved) is out of reach: it is dropped, and when no nameserver is
 * left slirp's forwarder (which asks the host's resolvers) stands in.
 */
export async function containerResolvConf(network: RunSpec['network'], fallbackDns?: string): Promise<string> {
  const text = await fsp.readFile('/etc/resolv.conf', 'utf8').catch(() => '');
  if (network === 'host') return text.endsWith('\n') || text === '' ? text : `${text}\n`;
  const lines = text.split('\n').filter((l) => !/^\s*nameserver\s+(127\.|::1)/.test(l));
  if (fallbackDns && !lines.some((l) => /^\s*nameserver\s/.test(l))) lines.push(`nameserver ${fallbackDns}`);
  return `${lines.join('\n').trim()}\n`;
}

/** /etc/hosts: localhost, then --add-host entries (Docker's order). */
export function containerHosts(extraHosts: readonly ExtraHost[] = []): string {
  const extra = extraHosts.map((h) => `${h.ip}\t${h.name}\n`).join('');
  return `127.0.0.1\tlocalhost ${HOSTNAME}\n::1\tlocalhost ip6-localhost ip6-loopback\n${extra}`;
}

const running = new Map<string, { stateRoot: string; child: ResultPromise }>();

/** Kill every container this process started (signal handlers call this). */
export async function killAll(): Promise<void> {
  const execa = await lazyExeca();
  for (const [id, r] of running) {
    await execa('runc', ['--root', r.stateRoot, 'kill', id, 'KILL'], { reject: false, stdin: 'ignore' });
    r.child.kill('SIGKILL');
  }
}

export async function runContainer(spec: RunSpec, stateRoot: string, tmpDir: string): Promise<RunResult> {
  const id = tempName('lbuild');
  const bundle = path.join(tmpDir, id);
  const net = spec.network === 'default' ? await startPrivateNetwork() : undefined;
  try {
    return await runInBundle(spec, stateRoot, id, bundle, net);
  } finally {
    await net?.close();
  }
}

async function runInBundle(spec: RunSpec, stateRoot: string, id: string, bundle: string, net: PrivateNetwork | undefined): Promise<RunResult> {
  const execa = await lazyExeca();
  await fsp.mkdir(bundle, { recursive: true });
  await fsp.writeFile(path.join(bundle, 'hosts'), containerHosts(spec.extraHosts));
  await fsp.writeFile(path.join(bundle, 'resolv.conf'), await containerResolvConf(spec.network, net?.dns));
  const namespaces: { type: string; path?: string }[] = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }];
  if (spec.network === 'none') namespaces.push({ type: 'network' });
  if (net) namespaces.push({ type: 'network', path: net.nsPath });
  const caps = spec.insecure ? await heldCaps() : DEFAULT_CAPS;
  const config = {
    ociVersion: '1.0.2',
    process: {
      terminal: spec.terminal === true,
      user: { uid: spec.uid, gid: spec.gid, ...(spec.additionalGids.length ? { additionalGids: spec.additionalGids } : {}) },
      args: spec.args,
      env: spec.env,
      cwd: spec.cwd,
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      noNewPrivileges: false,
    },
    root: { path: spec.root, readonly: spec.readonlyRoot ?? false },
    hostname: HOSTNAME,
    mounts: [...sandboxMounts(bundle, spec.network === 'host' && inUserNamespace()), ...(spec.extraMounts ?? [])],
    linux: {
      namespaces,
      maskedPaths: ['/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware'],
      readonlyPaths: ['/proc/asound', '/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
      ...(spec.insecure ? {} : { seccomp: defaultSeccomp(caps) }),
    },
  };
  await fsp.writeFile(path.join(bundle, 'config.json'), JSON.stringify(config));
  await fsp.mkdir(stateRoot, { recursive: true });
  const tail: string[] = [];
  const keep = (line: string): void => {
    tail.push(line);
    if (tail.length > 20) tail.shift();
    spec.onLine?.(line);
  };
  let child: ResultPromise;
  try {
    child = execa('runc', ['--root', stateRoot, 'run', '--bundle', bundle, id], {
      reject: false,
      env: {},
      extendEnv: false,
      ...(spec.inheritStdio ? { stdio: [spec.interactive ? 'inherit' : 'ignore', 'inherit', 'inherit'] as const } : { stdin: 'ignore' as const, all: true, buffer: false }),
    });
  } catch (e) {
    await fsp.rm(bundle, { recursive: true, force: true });
    throw e;
  }
  running.set(id, { stateRoot, child });
  spec.onStarted?.();
  try {
    if (!spec.inheritStdio && child.all) {
      let partial = '';
      child.all.setEncoding('utf8');
      for await (const chunk of child.all) {
        const text = partial + (chunk as string);
        const lines = text.split('\n');
        partial = lines.pop() ?? '';
        for (const l of lines) keep(l.replace(/\r$/, ''));
      }
      if (partial) keep(partial);
    }
    const r = await child;
    if (r.failed && r.exitCode === undefined) {
      throw new LbuildError(`runc could not start the container: ${r.shortMessage ?? 'unknown error'} (apt-get install runc)`);
    }
    return { exitCode: r.exitCode ?? 1, tail };
  } finally {
    running.delete(id);
    await execa('runc', ['--root', stateRoot, 'delete', '--force', id], { reject: false, stdin: 'ignore' });
    await fsp.rm(bundle, { recursive: true, force: true });
  }
}

/**
 * Containers left by a killed lbuild (their ID names the dead owner's PID): kill and delete
 * them, so the next command can release their mounts.
 */
export async function reapStaleContainers(stateRoot: string, isAlive: (pid: number) => boolean): Promise<number> {
  // the common case, no container state at all, costs one readdir and no process
  const ids = await fsp.readdir(stateRoot).catch(() => [] as string[]);
  if (!ids.some((id) => { const m = /^lbuild-(\d+)-/.exec(id); return m !== null && !isAlive(Number(m[1])); })) return 0;
  const execa = await lazyExeca();
  const r = await execa('runc', ['--root', stateRoot, 'list', '--format', 'json'], { reject: false, stdin: 'ignore' });
  if (r.exitCode !== 0 || !r.stdout.trim()) return 0;
  let list: { id: string }[];
  try {
    list = (JSON.parse(r.stdout) as { id: string }[] | null) ?? [];
  } catch {
    return 0;
  }
  let n = 0;
  for (const c of list) {
    const m = /^lbuild-(\d+)-[0-9a-f]{12}$/.exec(c.id);
    if (!m || isAlive(Number(m[1]))) continue;
    await execa('runc', ['--root', stateRoot, 'kill', c.id, 'KILL'], { reject: false, stdin: 'ignore' });
    await execa('runc', ['--root', stateRoot, 'delete', '--force', c.id], { reject: false, stdin: 'ignore' });
    n++;
  }
  return n;
}
