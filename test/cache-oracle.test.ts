import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { importBusybox } from './helpers/busybox.js';
import { lbuildOk, removeDir, run, tempDir } from './helpers/cli.js';
import { writeContext } from './helpers/context.js';

/*
 * The cache oracle (issue 14): random, seeded sequences of changes to a context and a
 * Dockerfile; after each, the cached build's image must be the image a --no-cache build makes
 * in a store of its own (SOURCE_DATE_EPOCH set, so digests compare), and an image built on a
 * stage that makes random bytes must carry the bytes of its own parent. A failure prints the
 * seed, the step and the changes so far: `LBUILD_ORACLE_SEED=<seed>` replays it.
 */

const SEEDS = process.env.LBUILD_ORACLE_SEED ? [Number(process.env.LBUILD_ORACLE_SEED)] : [11, 23, 37, 41];
// four seeds of 40 changes in CI (about 70 s each); LBUILD_ORACLE_STEPS=N for a longer run by hand
const STEPS = Number(process.env.LBUILD_ORACLE_STEPS ?? 40);

let dir: string;
let root: string;
// both stores get the same base image (same config bytes): import under the same epoch
before(async () => {
  dir = tempDir();
  root = path.join(dir, 'store');
  await importBusybox(root, 'busybox:latest', { SOURCE_DATE_EPOCH: '0' });
});
after(async () => {
  await removeDir(dir);
});

/** mulberry32: small, seeded, reproducible. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface World {
  ctx: string;
  env: string;
  arg: string;
  epoch: string;
  extraStep: boolean;
  swapped: boolean;
  ignoreB: boolean;
  noCacheGen: boolean;
  prune: boolean;
  /** a second source, alt/, copied over src/ (its a.txt a copy of src/a.txt, mtime and all) */
  alt: boolean;
}

function dockerfile(w: World): string {
  const copies = [w.alt ? 'COPY src alt /src/' : 'COPY src /src/', 'COPY data.bin link /files/'];
  if (w.swapped) copies.reverse();
  return [
    'FROM busybox AS gen',
    'RUN od -An -N8 -tx8 /dev/urandom > /rand',
    'FROM busybox AS app',
    'ARG V=1',
    `ENV E=${w.env}`,
    ...copies,
    ...(w.extraStep ? ['RUN echo extra > /extra'] : []),
    'RUN find /src /files | sort > /list && cat /files/link > /copy && echo "$V $E" > /vars',
    'FROM gen AS check',
    'COPY --from=app /vars /vars',
    'RUN cp /rand /rand2',
    '',
  ].join('\n');
}

const FILES = ['src/a.txt', 'src/b.txt', 'src/sub/c.txt', 'data.bin'];

type Mutation = (w: World, r: () => number) => Promise<string>;

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
const existing = async (w: World, r: () => number): Promise<string> => {
  const present: string[] = [];
  for (const f of [...FILES, 'src/b2.txt']) if (await fsp.stat(path.join(w.ctx, f)).then((st) => st.isFile(), () => false)) present.push(f);
  return pick(r, present);
};

const MUTATIONS: Record<string, Mutation> = {
  edit: async (w, r) => {
    const f = await existing(w, r);
    await fsp.writeFile(path.join(w.ctx, f), `content ${Math.floor(r() * 1e9)}\n`);
    return `edit ${f}`;
  },
  'same-size edit, mtime restored': async (w, r) => {
    const f = await existing(w, r);
    const p = path.join(w.ctx, f);
    const st = await fsp.stat(p);
    const old = await fsp.readFile(p);
    const next = Buffer.from(old.map((b, i) => (i === 0 ? (b === 0x41 ? 0x42 : 0x41) : b)));
    await fsp.writeFile(p, next.length ? next : Buffer.from('A'));
    await fsp.utimes(p, st.atime, st.mtime);
    return `same-size edit ${f}`;
  },
  chmod: async (w, r) => {
    const f = await existing(w, r);
    const p = path.join(w.ctx, f);
    const mode = ((await fsp.stat(p)).mode & 0o777) === 0o755 ? 0o644 : 0o755;
    await fsp.chmod(p, mode);
    return `chmod ${mode.toString(8)} ${f}`;
  },
  chown: async (w, r) => {
    const f = await existing(w, r);
    const uid = Math.floor(r() * 5000);
    await fsp.chown(path.join(w.ctx, f), uid, uid);
    return `chown ${uid} ${f}`;
  },
  rename: async (w) => {
    const a = path.join(w.ctx, 'src/b.txt');
    const b = path.join(w.ctx, 'src/b2.txt');
    if (await fsp.access(a).then(() => true, () => false)) await fsp.rename(a, b);
    else await fsp.rename(b, a);
    return 'rename src/b.txt <-> src/b2.txt';
  },
  'symlink retarget': async (w, r) => {
    const target = pick(r, ['src/a.txt', 'src/sub/c.txt', 'data.bin']);
    await fsp.rm(path.join(w.ctx, 'link'), { force: true });
    await fsp.symlink(target, path.join(w.ctx, 'link'));
    return `link -> ${target}`;
  },
  'hard link': async (w) => {
    const h = path.join(w.ctx, 'src/sub/h.txt');
    if (await fsp.lstat(h).then(() => true, () => false)) await fsp.rm(h);
    else await fsp.link(path.join(w.ctx, 'src/a.txt'), h).catch(async () => fsp.writeFile(h, 'h'));
    return 'toggle hard link src/sub/h.txt';
  },
  'empty dir': async (w) => {
    const d = path.join(w.ctx, 'src/empty');
    if (await fsp.access(d).then(() => true, () => false)) await fsp.rm(d, { recursive: true });
    else await fsp.mkdir(d);
    return 'toggle src/empty/';
  },
  '.dockerignore': async (w) => {
    w.ignoreB = !w.ignoreB;
    await fsp.writeFile(path.join(w.ctx, '.dockerignore'), `ignored*\n${w.ignoreB ? 'src/b*\n' : ''}`);
    return `.dockerignore ${w.ignoreB ? '+' : '-'}src/b*`;
  },
  'ignored file': async (w, r) => {
    await fsp.writeFile(path.join(w.ctx, 'ignored.txt'), String(r()));
    return 'edit ignored.txt';
  },
  'build-arg': async (w, r) => {
    w.arg = pick(r, ['1', '2', '3']);
    return `--build-arg V=${w.arg}`;
  },
  env: async (w, r) => {
    w.env = pick(r, ['a', 'b', 'c']);
    return `ENV E=${w.env}`;
  },
  'insert/remove a step': async (w) => {
    w.extraStep = !w.extraStep;
    return `${w.extraStep ? 'insert' : 'remove'} RUN echo extra`;
  },
  'reorder steps': async (w) => {
    w.swapped = !w.swapped;
    return 'swap the two COPYs';
  },
  '--no-cache-filter gen': async (w) => {
    w.noCacheGen = true;
    return '--no-cache-filter gen';
  },
  prune: async (w) => {
    w.prune = true;
    return 'prune --all';
  },
  // for the incremental COPY (issue 17.3): what it must not take over from the previous layer
  xattr: async (w, r) => {
    const f = await existing(w, r);
    const p = path.join(w.ctx, f);
    if ((await fsp.lstat(p)).isSymbolicLink()) return `no xattr on ${f} (a symlink)`;
    const had = (await run('getfattr', ['-n', 'user.k', p])).exitCode === 0;
    const set = await run('setfattr', had ? ['-x', 'user.k', p] : ['-n', 'user.k', '-v', String(Math.floor(r() * 100)), p]);
    if (set.exitCode !== 0) throw new Error(set.stderr);
    return `${had ? 'remove' : 'set'} user.k on ${f}`;
  },
  'file <-> directory': async (w) => {
    const p = path.join(w.ctx, 'src/sub/e');
    if (await fsp.stat(p).then((st) => st.isDirectory(), () => false)) {
      await fsp.rm(p, { recursive: true });
      await fsp.writeFile(p, 'e\n');
      return 'src/sub/e a file';
    }
    await fsp.rm(p, { force: true });
    await fsp.mkdir(p);
    await fsp.writeFile(path.join(p, 'inner'), 'inner\n');
    return 'src/sub/e a directory';
  },
  'second source': async (w) => {
    w.alt = !w.alt;
    const a = path.join(w.ctx, 'src/a.txt');
    await fsp.rm(path.join(w.ctx, 'alt'), { recursive: true, force: true });
    if (w.alt && (await fsp.lstat(a).then((st) => st.isFile(), () => false))) {
      await fsp.mkdir(path.join(w.ctx, 'alt'));
      await fsp.copyFile(a, path.join(w.ctx, 'alt/a.txt'));
      const st = await fsp.stat(a);
      await fsp.utimes(path.join(w.ctx, 'alt/a.txt'), st.atime, st.mtime);
    } else if (w.alt) await fsp.mkdir(path.join(w.ctx, 'alt'));
    return `${w.alt ? 'copy alt/ over' : 'no alt/ over'} src/`;
  },
  SOURCE_DATE_EPOCH: async (w, r) => {
    w.epoch = pick(r, ['0', '86400', '1700000000']);
    return `SOURCE_DATE_EPOCH=${w.epoch}`;
  },
};

async function imageOf(store: string, args: string[], w: World): Promise<string> {
  const r = await lbuildOk(store, ['build', '--progress', 'plain', '--build-arg', `V=${w.arg}`, ...args, w.ctx], { env: { SOURCE_DATE_EPOCH: w.epoch } });
  // LBUILD_ORACLE_LOG=FILE: every build's progress, to see what a run exercised
  if (process.env.LBUILD_ORACLE_LOG) await fsp.appendFile(process.env.LBUILD_ORACLE_LOG, r.stderr);
  return r.stdout.trim();
}

for (const seed of SEEDS) {
  test(`cache oracle, seed ${seed}: ${STEPS} random changes, every cached image equals a cold build's`, async () => {
    const r = prng(seed);
    const cold = path.join(dir, `cold-${seed}`);
    await importBusybox(cold, 'busybox:latest', { SOURCE_DATE_EPOCH: '0' });
    const w: World = { ctx: path.join(dir, `oracle-${seed}`), env: 'a', arg: '1', epoch: '0', extraStep: false, swapped: false, ignoreB: false, noCacheGen: false, prune: false, alt: false };
    await writeContext(w.ctx, {
      'src/a.txt': 'a\n',
      'src/b.txt': 'b\n',
      'src/sub/c.txt': 'c\n',
      'data.bin': 'data\n',
      'ignored.txt': 'ignored\n',
      '.dockerignore': 'ignored*\n',
      link: { symlink: 'src/a.txt' },
    });
    const names = Object.keys(MUTATIONS);
    const history: string[] = [];
    for (let i = 0; i < STEPS; i++) {
      history.push(await (MUTATIONS[pick(r, names)] as Mutation)(w, r));
      await fsp.writeFile(path.join(w.ctx, 'Dockerfile'), dockerfile(w));
      const where = `seed ${seed}, step ${i + 1}; changes: ${history.join('; ')}`;
      if (w.prune) await lbuildOk(root, ['prune', '-f', '--all']);
      const cached = await imageOf(root, ['--target', 'app'], w);
      const fresh = await imageOf(cold, ['--target', 'app', '--no-cache'], w);
      assert.equal(cached, fresh, `the cached image differs from a cold build (${where})`);
      if (w.noCacheGen || i % 5 === 4) {
        const check = await imageOf(root, ['--target', 'check', '-t', `check-${seed}`, ...(w.noCacheGen ? ['--no-cache-filter', 'gen'] : [])], w);
        const out = await lbuildOk(root, ['run', '--rm', check, 'sh', '-c', 'cmp /rand /rand2 && echo consistent']);
        assert.equal(out.stdout, 'consistent', `a child stacked on a foreign parent (${where})`);
      }
      w.noCacheGen = false;
      w.prune = false;
    }
  });
}
