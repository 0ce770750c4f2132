import { promises as fsp, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { run } from './cli.js';

export type Entry = string | { content?: string; mode?: number; symlink?: string; dir?: boolean };

/** Write a build context: path → content, or {mode}, {symlink: target}, {dir: true}. */
export async function writeContext(dir: string, files: Record<string, Entry>): Promise<string> {
  await fsp.mkdir(dir, { recursive: true });
  for (const [rel, e] of Object.entries(files)) {
    const p = path.join(dir, rel);
    await fsp.mkdir(path.dirname(p), { recursive: true });
    if (typeof e === 'string') await fsp.writeFile(p, e);
    else if (e.symlink !== undefined) await fsp.symlink(e.symlink, p);
    else if (e.dir) await fsp.mkdir(p, { recursive: true });
    else await fsp.writeFile(p, e.content ?? '');
    if (typeof e !== 'string' && e.mode !== undefined) await fsp.chmod(p, e.mode);
  }
  return dir;
}

/** Unpack an image with umoci (a real OCI client) and return the rootfs path. */
export async function unpackWithUmoci(lbuildSave: (out: string) => Promise<void>, work: string, tag: string): Promise<string> {
  const archive = path.join(work, 'img-oci.tar');
  await lbuildSave(archive);
  const layout = path.join(work, 'layout');
  await fsp.rm(layout, { recursive: true, force: true });
  await fsp.mkdir(layout, { recursive: true });
  const x = await run('tar', ['-xf', archive, '-C', layout]);
  if (x.exitCode !== 0) throw new Error(x.stderr);
  const bundle = path.join(work, 'bundle');
  await fsp.rm(bundle, { recursive: true, force: true });
  const u = await run('umoci', ['unpack', '--image', `${layout}:${tag}`, bundle]);
  if (u.exitCode !== 0) throw new Error(`umoci unpack: ${u.stderr}`);
  return path.join(bundle, 'rootfs');
}

/** Overlay mounts whose mount point is under `prefix` (a test's store). */
export function mountsUnder(prefix: string): string[] {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f[0] === 'overlay' && (f[1] ?? '').startsWith(prefix))
    .map((f) => f[1] ?? '');
}

/** Debian's attr tools and the libraries they need, for a busybox image to set and show xattrs. */
export const ATTR_TOOLS = ['/usr/bin/setfattr', '/usr/bin/getfattr', '/lib/x86_64-linux-gnu/libc.so.6', '/lib64/ld-linux-x86-64.so.2'];

/** Copy host programs into `ctx/tools/<their host path>` (mode 0755), for `COPY tools/ /`. */
export async function copyHostTools(ctx: string, hostPaths: readonly string[] = ATTR_TOOLS): Promise<void> {
  for (const host of hostPaths) {
    const dest = path.join(ctx, 'tools', host);
    await fsp.mkdir(path.dirname(dest), { recursive: true });
    await fsp.copyFile(host, dest);
    await fsp.chmod(dest, 0o755);
  }
}
