import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { constants, promises as fsp } from 'node:fs';
import { LbuildError } from '../errors.js';
import { inUserNamespace } from './rootless.js';

/*
 * RUN's default network, as Docker's: a private network namespace with outbound NAT, where the
 * host's 127.0.0.1 is not the container's. Without a daemon and a bridge, the NAT is user-mode
 * networking (slirp4netns, Debian's package): a tap device in the namespace whose packets the
 * slirp process turns into ordinary sockets on the host. --disable-host-loopback keeps the
 * host's loopback services (a local registry, a database, a metadata proxy) out of reach.
 */

export interface PrivateNetwork {
  /** the namespace to join: /proc/PID/ns/net of the process holding it */
  nsPath: string;
  /** the address of slirp's DNS forwarder inside the namespace */
  dns: string;
  close(): Promise<void>;
}

export const SLIRP_DNS = '10.0.2.3';

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('close', () => resolve()));
}

function missing(tool: string, pkg: string): LbuildError {
  return new LbuildError(`the default RUN network needs ${tool} (apt-get install ${pkg}); or build with --network host or --network none`);
}

/** Wait for the first chunk on a stream, or fail with what the process said if it ends first. */
function firstChunk(stream: Readable, child: ChildProcess, what: string, stderr: () => string): Promise<string> {
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer): void => { cleanup(); resolve(d.toString()); };
    const onEnd = (): void => {
      cleanup();
      const said = stderr().trim().split('\n').pop() ?? '';
      reject(new LbuildError(`${what} failed to start${said ? `: ${said}` : ''}`));
    };
    const onError = (e: NodeJS.ErrnoException): void => { cleanup(); reject(e); };
    const cleanup = (): void => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      child.off('error', onError);
    };
    stream.on('data', onData);
    stream.once('end', onEnd);
    child.once('error', onError);
  });
}

/**
 * A fresh network namespace with slirp4netns attached. The namespace is held by a `cat` reading
 * a pipe from this process and slirp watches an exit pipe, so both go away with lbuild even when
 * it is SIGKILLed.
 */
export async function startPrivateNetwork(): Promise<PrivateNetwork> {
  // Debian's udev rules open the tun device to every user; without udev it may be root's only
  if (inUserNamespace() && !(await fsp.access('/dev/net/tun', constants.R_OK | constants.W_OK).then(() => true, () => false))) {
    throw new LbuildError('rootless: the default RUN network needs /dev/net/tun open to users (as root: chmod 666 /dev/net/tun, as udev sets it); or build with --network host or --network none');
  }
  const holder = spawn('unshare', ['--net', '--', '/bin/sh', '-c', 'echo ready; exec cat >/dev/null'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let holderErr = '';
  holder.stderr?.on('data', (d: Buffer) => { holderErr += d.toString(); });
  const stopHolder = async (): Promise<void> => {
    holder.stdin?.end();
    holder.kill('SIGKILL');
    await exited(holder);
  };
  try {
    await firstChunk(holder.stdout as Readable, holder, 'the network namespace (unshare --net)', () => holderErr);
  } catch (e) {
    await stopHolder();
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw missing('unshare', 'util-linux');
    throw e;
  }
  const pid = holder.pid as number;
  const slirp = spawn('slirp4netns', [
    '--configure', '--mtu=65520', '--disable-host-loopback', '--enable-sandbox', '--enable-seccomp',
    '--exit-fd=3', '--ready-fd=4', String(pid), 'tap0',
  ], { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
  let slirpErr = '';
  slirp.stderr?.on('data', (d: Buffer) => { slirpErr += d.toString(); });
  const exitPipe = slirp.stdio[3] as Writable;
  // a closed exit pipe stops slirp; an EPIPE on it is that, not an error
  exitPipe.on('error', () => undefined);
  const stopSlirp = async (): Promise<void> => {
    exitPipe.destroy();
    const gone = exited(slirp);
    const timer = setTimeout(() => slirp.kill('SIGKILL'), 2000);
    await gone;
    clearTimeout(timer);
  };
  try {
    await firstChunk(slirp.stdio[4] as Readable, slirp, 'slirp4netns', () => slirpErr);
  } catch (e) {
    await Promise.all([stopSlirp(), stopHolder()]);
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw missing('slirp4netns', 'slirp4netns');
    throw e;
  }
  return {
    nsPath: `/proc/${pid}/ns/net`,
    dns: SLIRP_DNS,
    close: async () => { await Promise.all([stopSlirp(), stopHolder()]); },
  };
}
