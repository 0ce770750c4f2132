import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';

/*
 * A docker-archive (docker save / lbuild save) → the image as a consumer sees it: the layers
 * applied in order with OCI whiteouts, as one file tree, plus the runtime config. Written for the
 * tests on its own (tar-stream only), not with lbuild's code, so that it can judge lbuild.
 */

export interface FlatNode {
  type: 'dir' | 'file' | 'symlink' | 'char' | 'block' | 'fifo';
  mode: string;
  uid: number;
  gid: number;
  size?: number;
  sha256?: string;
  target?: string;
  /** the other paths of a hard-link group (sorted), when there are any */
  links?: string[];
}

export interface FlatImage {
  config: Record<string, unknown>;
  layers: number;
  fs: Record<string, FlatNode>;
}

const CONFIG_FIELDS = ['Cmd', 'Entrypoint', 'Env', 'WorkingDir', 'User', 'ExposedPorts', 'Volumes', 'Labels', 'StopSignal', 'Healthcheck', 'Shell', 'OnBuild'];

async function entriesOf(src: Readable): Promise<{ header: tar.Header; body: Buffer }[]> {
  const extract = tar.extract();
  const feeding = pipeline(src, extract);
  feeding.catch(() => undefined);
  const out: { header: tar.Header; body: Buffer }[] = [];
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    out.push({ header: entry.header, body: Buffer.concat(chunks) });
  }
  await feeding;
  return out;
}

const clean = (name: string): string => name.replace(/^(\.\/)+/, '').replace(/^\/+/, '').replace(/\/+$/, '');

export async function flattenArchive(file: string): Promise<FlatImage> {
  const files = new Map<string, Buffer>();
  const symlinks = new Map<string, string>();
  for (const { header, body } of await entriesOf(createReadStream(file))) {
    if (header.type === 'file') files.set(clean(header.name), body);
    else if (header.type === 'symlink') symlinks.set(clean(header.name), header.linkname ?? '');
  }
  const read = (name: string): Buffer => {
    let n = clean(name);
    for (let i = 0; i < 10 && !files.has(n) && symlinks.has(n); i++) {
      const t = symlinks.get(n) as string;
      n = clean(t.startsWith('/') ? t : `${n.split('/').slice(0, -1).join('/')}/${t}`.split('/').reduce<string[]>((acc, p) => (p === '..' ? acc.slice(0, -1) : p === '.' || p === '' ? acc : [...acc, p]), []).join('/'));
    }
    const b = files.get(n);
    if (!b) throw new Error(`archive lacks ${name}`);
    return b;
  };
  const manifest = JSON.parse(read('manifest.json').toString()) as { Config: string; Layers: string[] }[];
  const m = manifest[0];
  if (!m) throw new Error('empty manifest.json');
  const cfg = JSON.parse(read(m.Config).toString()) as { config?: Record<string, unknown> };
  const config: Record<string, unknown> = {};
  for (const k of CONFIG_FIELDS) {
    const v = cfg.config?.[k];
    if (v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0) && !(typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length === 0) && v !== '') config[k] = v;
  }
  const fs = new Map<string, FlatNode>();
  const group = new Map<string, string>(); // path → group id (first path of the group)
  const removeTree = (p: string, keep?: ReadonlySet<string>): void => {
    for (const k of [...fs.keys()]) {
      if ((k === p || k.startsWith(`${p}/`) || p === '') && !(keep?.has(k))) {
        fs.delete(k);
        group.delete(k);
      }
    }
  };
  for (const layer of m.Layers) {
    const added = new Set<string>();
    for (const { header: h, body } of await entriesOf(Readable.from(read(layer)))) {
      const name = clean(h.name);
      if (name === '' || name === '.') continue;
      const base = name.split('/').pop() as string;
      const dir = name.split('/').slice(0, -1).join('/');
      if (base === '.wh..wh..opq') {
        for (const k of [...fs.keys()]) if ((dir === '' || k.startsWith(`${dir}/`)) && !added.has(k)) fs.delete(k);
        continue;
      }
      if (base.startsWith('.wh.')) {
        removeTree(dir === '' ? base.slice(4) : `${dir}/${base.slice(4)}`);
        continue;
      }
      const pax = (h.pax ?? {}) as Record<string, string>;
      const owner = { uid: pax.uid !== undefined ? Number(pax.uid) : h.uid, gid: pax.gid !== undefined ? Number(pax.gid) : h.gid };
      const mode = ((h.mode ?? 0) & 0o7777).toString(8).padStart(4, '0');
      const prev = fs.get(name);
      if (prev && !(prev.type === 'dir' && h.type === 'directory')) removeTree(name);
      added.add(name);
      if (h.type === 'link') {
        const target = clean(h.linkname ?? '');
        const t = fs.get(target);
        if (!t) throw new Error(`${layer}: hard link ${name} to a missing ${target}`);
        fs.set(name, { ...t });
        const g = group.get(target) ?? target;
        group.set(target, g);
        group.set(name, g);
        continue;
      }
      const node: FlatNode =
        h.type === 'directory'
          ? { type: 'dir', mode, ...owner }
          : h.type === 'symlink'
            ? { type: 'symlink', mode: '0777', ...owner, target: h.linkname ?? '' }
            : h.type === 'character-device' || h.type === 'block-device' || h.type === 'fifo'
              ? { type: h.type === 'fifo' ? 'fifo' : h.type === 'block-device' ? 'block' : 'char', mode, ...owner }
              : { type: 'file', mode, ...owner, size: body.length, sha256: createHash('sha256').update(body).digest('hex') };
      fs.set(name, node);
      group.delete(name);
    }
  }
  const members = new Map<string, string[]>();
  for (const [p, g] of group) if (fs.has(p)) members.set(g, [...(members.get(g) ?? []), p]);
  for (const ps of members.values()) {
    if (ps.length < 2) continue;
    for (const p of ps) (fs.get(p) as FlatNode).links = ps.filter((x) => x !== p).sort();
  }
  const sorted: Record<string, FlatNode> = {};
  for (const k of [...fs.keys()].sort()) sorted[k] = fs.get(k) as FlatNode;
  return { config, layers: m.Layers.length, fs: sorted };
}
