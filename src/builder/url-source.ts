import * as path from 'node:path';
import { Readable } from 'node:stream';
import { LbuildError } from '../errors.js';
import { type Digest, parseDigest, sha256 } from '../oci/digest.js';
import { layout } from '../store/layout.js';
import type { Store } from '../store/store.js';
import { readJsonFile, writeFileAtomic } from '../util/fsx.js';
import { promises as fsp } from 'node:fs';
import { fetchFailureReason, tlsFetch } from '../util/fetch.js';

/*
 * ADD <http(s) URL>: the file is fetched when the step is keyed and kept in the content store
 * under its sha256, so the key follows the content (never the URL string alone) and the copy
 * uses exactly the bytes that were keyed. A later build asks again with the ETag: a 304 reuses
 * the stored bytes. `--checksum=sha256:…` is verified before anything is used.
 */

export interface FetchedUrl {
  url: string;
  digest: Digest;
  /** the file name the URL gives (its path's last part) */
  name: string;
  lastModified?: string;
}

interface UrlState {
  url: string;
  digest: Digest;
  etag?: string;
  lastModified?: string;
}

const TIMEOUT_MS = 120_000;

export function isHttpUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

export async function fetchUrl(store: Store, url: string, checksum: string | undefined, what: string): Promise<FetchedUrl> {
  const expected = checksum === undefined ? undefined : parseDigest(checksum, `${what}: --checksum`);
  const stateFile = path.join(layout.urls(store.root), `${sha256(url).slice(7, 39)}.json`);
  const known = await readJsonFile<UrlState>(stateFile).catch(() => undefined);
  const usable = known && known.url === url && (await store.content.has(known.digest)) ? known : undefined;
  const name = decodeURIComponent(new URL(url).pathname.split('/').filter((p) => p !== '').pop() ?? '') || 'index.html';
  let res: Response;
  try {
    res = await tlsFetch(url, { redirect: 'follow', signal: AbortSignal.timeout(TIMEOUT_MS), headers: usable?.etag ? { 'if-none-match': usable.etag } : {} });
  } catch (e) {
    throw new LbuildError(`${what}: cannot fetch ${url} (${fetchFailureReason(e)})`);
  }
  let state: UrlState;
  if (res.status === 304 && usable) state = usable;
  else if (res.ok && res.body) {
    const staged = await store.content.stage(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), undefined, `${what}: ${url}`);
    if (expected && staged.digest !== expected) {
      await store.content.discard(staged);
      throw new LbuildError(`${what}: ${url}: checksum mismatch (expected ${expected}, got ${staged.digest})`);
    }
    await store.content.commit(staged);
    state = { url, digest: staged.digest, ...(res.headers.get('etag') ? { etag: res.headers.get('etag') as string } : {}), ...(res.headers.get('last-modified') ? { lastModified: res.headers.get('last-modified') as string } : {}) };
    await fsp.mkdir(path.dirname(stateFile), { recursive: true });
    await writeFileAtomic(stateFile, JSON.stringify(state));
  } else throw new LbuildError(`${what}: ${url}: HTTP ${res.status}`);
  if (expected && state.digest !== expected) throw new LbuildError(`${what}: ${url}: checksum mismatch (expected ${expected}, got ${state.digest})`);
  return { url, digest: state.digest, name, ...(state.lastModified ? { lastModified: state.lastModified } : {}) };
}
