import { execa, type ResultPromise } from 'execa';
import { promises as fsp } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { run } from './cli.js';

export interface Registry {
  host: string;
  storage: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * Debian's docker-registry (distribution v2) on 127.0.0.1 at a free port with a temp storage
 * dir; with `auth`, an htpasswd realm holding that one user.
 */
export async function startRegistry(dir: string, auth?: { user: string; password: string }): Promise<Registry> {
  const port = await freePort();
  const storage = path.join(dir, `registry-${port}`);
  await fsp.mkdir(storage, { recursive: true });
  let authBlock = '';
  if (auth) {
    const pw = path.join(storage, 'htpasswd');
    const h = await run('htpasswd', ['-Bbc', pw, auth.user, auth.password]);
    if (h.exitCode !== 0) throw new Error(`htpasswd failed (apt-get install apache2-utils): ${h.stderr}`);
    authBlock = `auth:\n  htpasswd:\n    realm: lbuild-test\n    path: ${pw}\n`;
  }
  const config = path.join(storage, 'config.yml');
  await fsp.writeFile(
    config,
    `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${storage}/data\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n${authBlock}`,
  );
  const child: ResultPromise = execa('docker-registry', ['serve', config], { reject: false, stdin: 'ignore', stdout: 'ignore', stderr: 'pipe' });
  const host = `127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`http://${host}/v2/`).then(
      (r) => r.status === 200 || r.status === 401,
      () => false,
    );
    if (ok) break;
    if (i === 99) throw new Error('docker-registry did not start (apt-get install docker-registry)');
    await sleep(100);
  }
  return {
    host,
    storage: path.join(storage, 'data'),
    stop: async () => {
      child.kill('SIGTERM');
      await child;
    },
  };
}
