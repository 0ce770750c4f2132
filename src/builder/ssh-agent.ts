import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LbuildError, UsageError } from '../errors.js';
import { lazyExeca } from '../util/exec.js';
import { tempName } from '../util/fsx.js';

/*
 * `--ssh default|ID[=SOCKET|KEY[,KEY]]` and `RUN --mount=type=ssh`: an SSH agent reaches the RUN
 * as a socket and nothing else, so no key lands in a layer, the history or the cache. The RUN sees
 * a socket of lbuild's own (owner and mode from the mount's uid/gid/mode), each connection relayed
 * to the user's agent ($SSH_AUTH_SOCK or the socket given) or to an ssh-agent lbuild starts for
 * key files. The key of the step holds the mount's id and target, never a key or a path.
 */

export interface SshSource {
  id: string;
  /** a socket, or key files; none: $SSH_AUTH_SOCK */
  paths: string[];
}

export function parseSsh(spec: string): SshSource {
  const eq = spec.indexOf('=');
  const id = eq < 0 ? spec : spec.slice(0, eq);
  if (!/^[A-Za-z0-9_.-]+$/.test(id)) throw new UsageError(`--ssh ${spec}: expected default, ID, or ID=SOCKET|KEY[,KEY]`);
  const paths = eq < 0 ? [] : spec.slice(eq + 1).split(',').filter((p) => p !== '').map((p) => p.replace(/^~(?=\/)/, os.homedir()));
  return { id, paths };
}

export interface SshRelay {
  /** the socket to bind into the RUN */
  socket: string;
  close(): Promise<void>;
}

async function isSocket(p: string): Promise<boolean> {
  return (await fsp.stat(p).catch(() => undefined))?.isSocket() === true;
}

/** The SSH agents of one build: started on first use, stopped with close(). */
export class SshAgents {
  private readonly upstreams = new Map<string, Promise<string>>();
  private readonly agents: ChildProcess[] = [];

  constructor(
    private readonly sources: ReadonlyMap<string, SshSource>,
    private readonly tmpDir: string,
  ) {}

  has(id: string): boolean {
    return this.sources.has(id);
  }

  /** The agent socket for an id: the user's, or an agent holding the given keys. */
  private upstream(id: string): Promise<string> {
    let p = this.upstreams.get(id);
    if (!p) {
      p = this.resolve(this.sources.get(id) as SshSource);
      this.upstreams.set(id, p);
    }
    return p;
  }

  private async resolve(src: SshSource): Promise<string> {
    if (src.paths.length === 0) {
      const sock = process.env.SSH_AUTH_SOCK;
      if (!sock || !(await isSocket(sock))) throw new UsageError(`--ssh ${src.id}: no SSH agent ($SSH_AUTH_SOCK is ${sock ? `${sock}, not a socket` : 'not set'}); start one, or give --ssh ${src.id}=KEYFILE`);
      return sock;
    }
    if (src.paths.length === 1 && (await isSocket(src.paths[0] as string))) return src.paths[0] as string;
    for (const k of src.paths) {
      if (!(await fsp.stat(k).catch(() => undefined))?.isFile()) throw new UsageError(`--ssh ${src.id}: ${k} is neither an agent socket nor a key file`);
    }
    const sock = path.join(this.tmpDir, `${tempName('ssh')}.agent`);
    // the agent lives while a pipe from lbuild is open: it goes with lbuild, even a SIGKILLed one
    const agent = spawn('/bin/sh', ['-c', 'ssh-agent -D -a "$1" >/dev/null 2>&1 & a=$!; read _; kill $a', 'sh', sock], { stdio: ['pipe', 'ignore', 'ignore'] });
    this.agents.push(agent);
    agent.on('error', () => undefined);
    agent.stdin?.on('error', () => undefined);
    for (let i = 0; i < 100 && !(await isSocket(sock)); i++) {
      if (agent.exitCode !== null) break;
      await sleep(20);
    }
    if (!(await isSocket(sock))) throw new LbuildError(`--ssh ${src.id}: ssh-agent did not start (apt-get install openssh-client)`);
    const execa = await lazyExeca();
    for (const k of src.paths) {
      const r = await execa('ssh-add', ['-q', k], { reject: false, stdin: 'ignore', env: { SSH_AUTH_SOCK: sock, SSH_ASKPASS_REQUIRE: 'never' }, extendEnv: false });
      if (r.exitCode !== 0) throw new UsageError(`--ssh ${src.id}: ssh-add ${k} failed (${r.stderr.trim() || `exit ${r.exitCode}`}; a key with a passphrase needs an agent: --ssh ${src.id}=$SSH_AUTH_SOCK)`);
    }
    return sock;
  }

  /** A socket of our own for one RUN, owned as the mount asks, relaying to the id's agent. */
  async relay(id: string, owner: { uid: number; gid: number; mode: number }): Promise<SshRelay> {
    const upstream = await this.upstream(id);
    const dir = path.join(this.tmpDir, tempName('sshrelay'));
    await fsp.mkdir(dir, { mode: 0o700 });
    const socket = path.join(dir, 'agent.sock');
    const open = new Set<net.Socket>();
    const server = net.createServer((c) => {
      const up = net.connect(upstream);
      open.add(c).add(up);
      const end = (): void => {
        c.destroy();
        up.destroy();
        open.delete(c);
        open.delete(up);
      };
      c.on('error', end).on('close', end);
      up.on('error', end).on('close', end);
      c.pipe(up).pipe(c);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socket, () => resolve());
    });
    await fsp.chown(socket, owner.uid, owner.gid);
    await fsp.chmod(socket, owner.mode);
    return {
      socket,
      close: async () => {
        for (const s of open) s.destroy();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await fsp.rm(dir, { recursive: true, force: true });
      },
    };
  }

  async close(): Promise<void> {
    for (const a of this.agents) a.stdin?.end();
    this.agents.length = 0;
  }
}
