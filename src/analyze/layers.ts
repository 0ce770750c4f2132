import type { Readable } from 'node:stream';
import tar from 'tar-stream';

/** One entry of a layer tar, as the analysis needs it. */
export interface LayerEntry {
  path: string;
  kind: 'file' | 'dir' | 'link' | 'other' | 'whiteout' | 'opaque';
  size: number;
}

/** Read a layer tar's headers (bodies are skipped, never buffered). */
export async function readLayerEntries(src: Readable): Promise<LayerEntry[]> {
  const extract = tar.extract();
  src.pipe(extract as unknown as NodeJS.WritableStream);
  const out: LayerEntry[] = [];
  for await (const e of extract) {
    const h = e.header;
    const name = h.name.replace(/^\.\//, '').replace(/\/+$/, '');
    const base = name.slice(name.lastIndexOf('/') + 1);
    const dir = name.includes('/') ? name.slice(0, name.lastIndexOf('/')) : '';
    if (base === '.wh..wh..opq') out.push({ path: dir, kind: 'opaque', size: 0 });
    else if (base.startsWith('.wh.')) out.push({ path: dir ? `${dir}/${base.slice(4)}` : base.slice(4), kind: 'whiteout', size: 0 });
    else if (name !== '' && name !== '.') {
      const kind = h.type === 'file' || h.type === 'contiguous-file' ? 'file' : h.type === 'directory' ? 'dir' : h.type === 'symlink' || h.type === 'link' ? 'link' : 'other';
      out.push({ path: name, kind, size: kind === 'file' ? h.size : 0 });
    }
    e.resume();
  }
  return out;
}
