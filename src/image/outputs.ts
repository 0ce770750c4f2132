import { promises as fsp } from 'node:fs';
import type { Readable } from 'node:stream';
import { UsageError } from '../errors.js';
import { openArchiveSink } from '../oci/archive-io.js';
import type { Digest } from '../oci/digest.js';
import { isWhiteoutDevice, packTree } from '../diff/tarwriter.js';
import { applyLayer } from '../snapshot/apply.js';
import { Snapshotter } from '../snapshot/overlay.js';
import type { Store, StoredImage, StoredIndex } from '../store/store.js';
import { pushImage, type TransferOptions } from '../registry/transfer.js';
import { FORMATS, exportImage, exportIndex } from './transfer.js';

/*
 * Where a build's result goes besides the store, as `docker build -o/--push/--load` name it:
 * the final filesystem (a directory or a tar), an image archive, a registry, a running dockerd.
 */

export type Output =
  | { type: 'local'; dest: string }
  | { type: 'tar'; dest: string }
  | { type: 'oci' | 'docker'; dest: string }
  | { type: 'image'; push: boolean; names: string[] }
  | { type: 'load' };

function keyValues(spec: string): Map<string, string> {
  const kv = new Map<string, string>();
  for (const part of spec.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new UsageError(`--output ${spec}: expected key=value pairs (type=local,dest=DIR)`);
    kv.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return kv;
}

/** One --output value: `DIR`, `-` (a tar of the filesystem to stdout) or `type=…,dest=…`. */
export function parseOutput(spec: string): Output {
  if (spec === '-') return { type: 'tar', dest: '-' };
  if (!spec.includes('=')) return { type: 'local', dest: spec };
  const kv = keyValues(spec);
  const type = kv.get('type') ?? 'local';
  const dest = kv.get('dest');
  const needDest = (): string => {
    if (!dest) throw new UsageError(`--output type=${type} needs dest= (a path, or - for standard output)`);
    return dest;
  };
  switch (type) {
    case 'local':
      if (dest === '-') throw new UsageError('--output type=local: dest must be a directory (type=tar for standard output)');
      return { type: 'local', dest: needDest() };
    case 'tar':
      return { type: 'tar', dest: needDest() };
    case 'oci':
    case 'docker':
      // with no dest, docker's driver loads the image: so does lbuild
      if (type === 'docker' && !dest) return { type: 'load' };
      return { type, dest: needDest() };
    case 'image':
    case 'registry': {
      const names = (kv.get('name') ?? '').split(',').map((n) => n.trim()).filter((n) => n !== '');
      const push = type === 'registry' || kv.get('push') === 'true';
      return { type: 'image', push, names };
    }
    default:
      throw new UsageError(`--output type=${type}: unsupported (local, tar, oci, docker, image, registry)`);
  }
}

/** A --output list, checked as a whole: standard output can take one stream only. */
export function parseOutputs(specs: readonly string[]): Output[] {
  const outs = specs.map(parseOutput);
  if (outs.filter((o) => 'dest' in o && o.dest === '-').length > 1) throw new UsageError('--output: only one output can go to standard output');
  return outs;
}

export interface Delivered {
  /** `name@digest` of each push */
  pushed: { name: string; digest: Digest }[];
}

/** The final filesystem as a tar stream. A single-layer view is the snapshot itself, whose whiteouts (0/0 devices) are not files. */
function filesystemPack(root: string): Readable {
  return packTree(root, { descend: (_rel, st) => !isWhiteoutDevice(st) }) as unknown as Readable;
}

/** Write the image's final filesystem as a tar: `-`, a device or FIFO, or a file (atomically), as save does. */
async function filesystemTar(root: string, dest: string): Promise<void> {
  const sink = await openArchiveSink(dest, filesystemPack(root));
  try {
    await sink.done;
    await sink.commit();
  } catch (e) {
    await sink.abort();
    throw e;
  }
}

/** type=image: the names given (or the build's tags) on the result, each pushed with push=true. */
async function nameAndPush(store: Store, result: { id: Digest; tags: readonly string[] }, o: { push: boolean; names: string[] }, opts: TransferOptions & { log: (line: string) => void }, done: Delivered): Promise<void> {
  const names = o.names.length ? o.names : result.tags;
  if (o.push && names.length === 0) throw new UsageError('--push: the image has no name to push to (give -t NAME)');
  for (const n of names) {
    if (!result.tags.includes(n)) await store.tag(result.id, n);
    if (!o.push) continue;
    const r = await pushImage(store, n, undefined, opts);
    done.pushed.push({ name: n, digest: r.digest });
    opts.log(`pushed ${n}@${r.digest}`);
  }
}

/** What a build of several platforms can deliver: an index (OCI layout, registry, the store), not one filesystem or a docker-archive. */
export function checkMultiOutputs(outputs: readonly Output[]): void {
  for (const o of outputs) {
    if (o.type === 'local' || o.type === 'tar' || o.type === 'docker' || o.type === 'load') {
      const name = o.type === 'load' ? '--load' : `--output type=${o.type}`;
      throw new UsageError(`${name} takes one platform's image: build one --platform for it, or deliver all of them with --push or --output type=oci`);
    }
  }
}

/** A multi-platform result's outputs (checkMultiOutputs said which can be). */
export async function deliverIndexOutputs(store: Store, index: StoredIndex, outputs: readonly Output[], opts: TransferOptions & { log: (line: string) => void }): Promise<Delivered> {
  checkMultiOutputs(outputs);
  const done: Delivered = { pushed: [] };
  for (const o of outputs) {
    if (o.type === 'oci') {
      await FORMATS.oci.write([await exportIndex(store, index)], o.dest, store.tmpDir);
      opts.log(`exported the image index (OCI layout) to ${o.dest === '-' ? 'standard output' : o.dest}`);
    } else if (o.type === 'image') await nameAndPush(store, { id: index.digest, tags: index.tags }, o, opts, done);
  }
  return done;
}

export async function deliverOutputs(store: Store, image: StoredImage, outputs: readonly Output[], opts: TransferOptions & { log: (line: string) => void }): Promise<Delivered> {
  const done: Delivered = { pushed: [] };
  for (const o of outputs) {
    switch (o.type) {
      case 'local':
      case 'tar': {
        const view = await new Snapshotter(store).view(image.config.rootfs.diff_ids);
        try {
          if (o.type === 'tar') await filesystemTar(view.root, o.dest);
          else {
            await fsp.mkdir(o.dest, { recursive: true });
            // through a tar: the same safe unpacking as any layer, owners and modes kept
            await applyLayer(filesystemPack(view.root), o.dest);
          }
        } finally {
          await view.release();
        }
        opts.log(`exported the filesystem to ${o.dest === '-' ? 'standard output' : o.dest}`);
        break;
      }
      case 'oci':
      case 'docker':
        await FORMATS[o.type].write([await exportImage(store, image)], o.dest, store.tmpDir);
        opts.log(`exported the image (${o.type === 'oci' ? 'OCI layout' : 'docker-archive'}) to ${o.dest === '-' ? 'standard output' : o.dest}`);
        break;
      case 'image':
        await nameAndPush(store, image, o, opts, done);
        break;
      case 'load': {
        // node:http and the daemon client only for --load
        const { dockerSocket, loadIntoDocker } = await import('./docker-daemon.js');
        const socket = dockerSocket();
        const exp = await exportImage(store, image);
        const said = await loadIntoDocker(socket, (body) => FORMATS.docker.write([exp], body, store.tmpDir));
        for (const line of said) opts.log(`dockerd: ${line}`);
        break;
      }
    }
  }
  return done;
}
