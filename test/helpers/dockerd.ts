import { execa, type ResultPromise } from 'execa';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Result, run } from './cli.js';

export interface Dockerd {
  /** the daemon's API socket (DOCKER_HOST=unix://…) */
  socket: string;
  docker(args: string[], input?: string): Promise<Result>;
  stop(): Promise<void>;
}

/** Debian's docker client, whatever newer one is first on PATH (it talks to this 20.10 daemon). */
const DOCKER = '/usr/bin/docker';

/**
 * A private dockerd (Debian's docker.io) for the test: its own data root, socket and exec root
 * under `dir`, no bridge and no iptables, so it touches nothing of the host's Docker, if any.
 */
export async function startDockerd(dir: string): Promise<Dockerd> {
  const base = path.join(dir, 'dockerd');
  await fsp.mkdir(base, { recursive: true });
  const sock = path.join(base, 'docker.sock');
  const child: ResultPromise = execa(
    'dockerd',
    ['--data-root', path.join(base, 'data'), '--exec-root', path.join(base, 'exec'), '--pidfile', path.join(base, 'pid'), '-H', `unix://${sock}`, '--storage-driver=overlay2', '--bridge=none', '--iptables=false', '--ip-forward=false'],
    { reject: false, stdin: 'ignore', stdout: 'ignore', stderr: 'ignore', detached: true },
  );
  const docker = (args: string[], input?: string): Promise<Result> =>
    execa(DOCKER, ['-H', `unix://${sock}`, ...args], { reject: false, ...(input !== undefined ? { input } : { stdin: 'ignore' as const }) }).then((r) => ({ exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) }));
  for (let i = 0; ; i++) {
    if ((await docker(['version'])).exitCode === 0) break;
    if (i === 120 || (child.exitCode !== null && child.exitCode !== undefined)) throw new Error('dockerd did not start (apt-get install docker.io)');
    await sleep(250);
  }
  return {
    socket: sock,
    docker,
    stop: async () => {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await child;
      clearTimeout(killer);
      // dockerd leaves its overlay mounts under data/ when killed: unmount what is there
      await run('sh', ['-c', `grep -o ' ${base}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l`]);
    },
  };
}
