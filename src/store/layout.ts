import * as path from 'node:path';
import { type Digest, hexOf } from '../oci/digest.js';

/*
 * The store's on-disk layout, in one place: every module asks here for its paths, and garbage
 * collection (store.ts) knows from here what exists. Under the root:
 *
 *   blobs/sha256/<hex>        content-addressed blobs (layer tars, configs, manifests)
 *   snapshots/<hex>/diff      a layer extracted (overlay lower dir), keyed by diff_id
 *   l/<id>                    short links to snapshot dirs (the mount option is one page long)
 *   flat/<chain16>            merged views of long layer chains (past the kernel's lower limit)
 *   empty/                    the lower dir of FROM scratch
 *   unsynced/<hex>.<boot>     snapshots not yet known to be on disk (durability.ts)
 *   leases/<pid>.json         what builds in flight are using
 *   runc/                     runc's state for running containers
 *   tmp/                      temp files (names carry the writer's PID)
 *   buildinfo/<hex>.json      per image: the Dockerfile lines that made its layers
 *   images.json, images.lock  the image and tag index
 *   overlay-xattrs            `trusted` or `user`: the xattr namespace of the snapshots' overlay marks
 *   gc.running                the PID of a garbage collection in progress (leases.ts)
 *   cache/records/<key>.json  the layer cache
 *   cache/builds/<id>.json    the last build of a Dockerfile + target (miss explanations)
 *   cache/files/<digest>.json file lists of COPY sources (naming the changed file)
 *   cache/views/<id>.json     digests of what a selection takes from a chain of layers
 *   cache/stat/<ctx>.v4       the stat cache of a build context
 *   cache/origins/<hex>.json  where a pulled layer came from (cross-repository mounts)
 *   cache/compressed/<hex>.json  the gzip blob of a layer (pushed once)
 *   cache/sizes/<hex>.json    a layer's size as Docker counts it (layer-size.ts)
 *   cache/lint/<hex>.json     what a layer does to the files lint asks about (lint/base-facts.ts)
 *   cache/mounts/<id>/        RUN --mount=type=cache directories
 *   cache/reports/<id>.json   build reports (lbuild report)
 *   cache/history.jsonl       one line per build (lbuild cache report)
 *   cache/urls/<id>.json      ADD <url>: the digest, ETag and Last-Modified of what it last fetched
 */

/** Directories only lbuild may enter: 0700 whatever the root's mode. */
export const PRIVATE_DIRS = ['blobs', 'tmp', 'snapshots', 'l', 'flat', 'cache', 'buildinfo', 'leases', 'runc', 'unsynced'] as const;

export const layout = {
  tmp: (root: string): string => path.join(root, 'tmp'),
  blobs: (root: string): string => path.join(root, 'blobs'),
  snapshots: (root: string): string => path.join(root, 'snapshots'),
  links: (root: string): string => path.join(root, 'l'),
  flat: (root: string): string => path.join(root, 'flat'),
  empty: (root: string): string => path.join(root, 'empty'),
  unsynced: (root: string): string => path.join(root, 'unsynced'),
  leases: (root: string): string => path.join(root, 'leases'),
  gcRunning: (root: string): string => path.join(root, 'gc.running'),
  overlayXattrs: (root: string): string => path.join(root, 'overlay-xattrs'),
  runc: (root: string): string => path.join(root, 'runc'),
  buildinfo: (root: string, id?: Digest): string => (id ? path.join(root, 'buildinfo', `${hexOf(id)}.json`) : path.join(root, 'buildinfo')),
  cache: (root: string): string => path.join(root, 'cache'),
  records: (root: string): string => path.join(root, 'cache', 'records'),
  builds: (root: string): string => path.join(root, 'cache', 'builds'),
  files: (root: string): string => path.join(root, 'cache', 'files'),
  views: (root: string): string => path.join(root, 'cache', 'views'),
  stat: (root: string): string => path.join(root, 'cache', 'stat'),
  origins: (root: string, diffId?: Digest): string => (diffId ? path.join(root, 'cache', 'origins', `${hexOf(diffId)}.json`) : path.join(root, 'cache', 'origins')),
  compressed: (root: string, diffId?: Digest): string => (diffId ? path.join(root, 'cache', 'compressed', `${hexOf(diffId)}.json`) : path.join(root, 'cache', 'compressed')),
  sizes: (root: string, diffId?: Digest): string => (diffId ? path.join(root, 'cache', 'sizes', `${hexOf(diffId)}.json`) : path.join(root, 'cache', 'sizes')),
  lintFacts: (root: string, diffId?: Digest): string => (diffId ? path.join(root, 'cache', 'lint', `${hexOf(diffId)}.json`) : path.join(root, 'cache', 'lint')),
  mounts: (root: string): string => path.join(root, 'cache', 'mounts'),
  reports: (root: string): string => path.join(root, 'cache', 'reports'),
  history: (root: string): string => path.join(root, 'cache', 'history.jsonl'),
  urls: (root: string): string => path.join(root, 'cache', 'urls'),
};
