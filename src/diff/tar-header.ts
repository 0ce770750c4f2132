import type tar from 'tar-stream';

/*
 * The ustar header block tar-stream (3.x, headers.js `encode`) writes for an entry without PAX
 * records, byte for byte: packing writes most entries itself with it (tarwriter.ts), and lets
 * tar-stream write only those that need PAX, without a stream and two callbacks per entry. A
 * layer's bytes are its diff_id, so the two must never differ (test/tar-header.test.ts packs
 * trees both ways and compares).
 */

export const BLOCK = 512;
const MASK = 0o7777;
const TYPEFLAGS: Partial<Record<tar.Header['type'] & string, number>> = {
  file: 0, link: 1, symlink: 2, 'character-device': 3, 'block-device': 4, directory: 5, fifo: 6, 'contiguous-file': 7,
};

/** tar-stream's octal field: `n` digits and a space, or sevens where the value does not fit. */
function octal(v: number, n: number): string {
  const s = v.toString(8);
  return s.length > n ? `${'7'.repeat(n)} ` : `${s.padStart(n, '0')} `;
}

/**
 * The header tar-stream would write for `h` (as its `entry` normalizes it), or undefined where it
 * would write PAX records first: non-ASCII or over-long names and link targets, or `h.pax` set.
 */
export function ustarBlock(h: tar.Header): Buffer | undefined {
  if (h.pax) return undefined;
  let name = h.name;
  let prefix = '';
  // ASCII only: tar-stream sends any other name through PAX
  if (Buffer.byteLength(name) !== name.length) return undefined;
  while (name.length > 100) {
    const i = name.indexOf('/');
    if (i === -1) return undefined;
    prefix += prefix ? `/${name.slice(0, i)}` : name.slice(0, i);
    name = name.slice(i + 1);
  }
  if (prefix.length > 155) return undefined;
  const linkname = h.linkname ?? '';
  if (linkname && Buffer.byteLength(linkname) > 100) return undefined;
  const type = h.type ?? 'file';
  const size = !h.size || type === 'symlink' ? 0 : h.size;
  const mode = h.mode || (type === 'directory' ? 0o755 : 0o644);
  const b = Buffer.alloc(BLOCK);
  b.write(name, 0);
  b.write(octal(mode & MASK, 6), 100);
  b.write(octal(h.uid || 0, 6), 108);
  b.write(octal(h.gid || 0, 6), 116);
  if (size.toString(8).length > 11) {
    // base-256, as tar-stream writes sizes of 8 GiB and more
    b[124] = 0x80;
    let v = size;
    for (let i = 11; i > 0; i--) {
      b[124 + i] = v & 0xff;
      v = Math.floor(v / 0x100);
    }
  } else {
    b.write(octal(size, 11), 124);
  }
  // `| 0` as tar-stream does: the same bytes for every time, 2038 and after included
  b.write(octal(((h.mtime ?? new Date()).getTime() / 1000) | 0, 11), 136);
  b[156] = 0x30 + (TYPEFLAGS[type] ?? 0);
  if (linkname) b.write(linkname, 157);
  b.write('ustar\0', 257, 'latin1');
  b.write('00', 263, 'latin1');
  if (h.uname) b.write(h.uname, 265);
  if (h.gname) b.write(h.gname, 297);
  b.write(octal(h.devmajor || 0, 6), 329);
  b.write(octal(h.devminor || 0, 6), 337);
  if (prefix) b.write(prefix, 345);
  let sum = 8 * 32;
  for (let i = 0; i < 148; i++) sum += b[i] as number;
  for (let i = 156; i < BLOCK; i++) sum += b[i] as number;
  b.write(octal(sum, 6), 148);
  return b;
}
