import { setTimeout as sleep } from 'node:timers/promises';
import { Readable, Transform } from 'node:stream';
import { LbuildError } from '../errors.js';
import { parseDigest } from '../oci/digest.js';
import { type Credentials, credentialsFor, parseChallenge } from './auth.js';
import { type RemoteRef, isLoopback } from './ref.js';
import { fetchFailureReason, tlsFetch } from '../util/fetch.js';

/** What a request can send: bytes or a stream (sent once; callers pass a factory). */
export type RequestBody = Uint8Array | string | AsyncIterable<Uint8Array>;

export interface ClientOptions {
  /** registries reached over plain HTTP besides loopback ones (--insecure-registry) */
  insecure?: readonly string[];
  retries?: number;
}

/** An error from the registry, with a message a user can act on. */
export class RegistryError extends LbuildError {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'RegistryError';
  }
}

/**
 * A small OCI distribution client on Node's fetch: bearer-token and basic auth from the
 * WWW-Authenticate challenge (credentials from the Docker config), retries with backoff on
 * 5xx and connection errors, plain HTTP only for loopback or --insecure-registry hosts.
 */
/** Manifests, indexes, configs and tokens are documents of a few KiB: more than this is refused. */
const MAX_DOCUMENT = 4 << 20;

/** Seconds without headers, or without body bytes, before a request is given up (LBUILD_REGISTRY_TIMEOUT_MS). */
function timeoutMs(): number {
  const v = Number(process.env.LBUILD_REGISTRY_TIMEOUT_MS);
  return Number.isFinite(v) && v > 0 ? v : 60_000;
}

export class RegistryClient {
  private token: string | undefined;
  private basic: string | undefined;
  private creds: Credentials | undefined | null = null;
  readonly base: string;

  constructor(
    readonly ref: RemoteRef,
    private readonly opts: ClientOptions = {},
  ) {
    const plain = isLoopback(ref.host) || (opts.insecure ?? []).includes(ref.host);
    this.base = `${plain ? 'http' : 'https'}://${ref.endpoint}`;
  }

  /** the abort of each response, for the idle timeout while its body is read */
  private readonly idle = new WeakMap<Response, AbortController>();

  /** A response body as a stream that fails when it goes quiet for too long or passes `max` bytes. */
  private bodyStream(res: Response, what: string, max: number): Readable {
    if (!res.body) throw new RegistryError(`${what}: empty response`);
    const ac = this.idle.get(res);
    const limit = timeoutMs();
    let seen = 0;
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => ac?.abort(new Error(`no data for ${limit / 1000} s`)), limit);
    };
    arm();
    const guard = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        seen += chunk.length;
        if (seen > max) {
          clearTimeout(timer);
          ac?.abort();
          cb(new RegistryError(`${what}: the registry sent more than ${max} bytes`));
          return;
        }
        arm();
        cb(null, chunk);
      },
      flush(cb) {
        clearTimeout(timer);
        cb();
      },
    });
    const src = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream);
    src.on('error', (e) => {
      clearTimeout(timer);
      guard.destroy(new RegistryError(`${what}: download failed (${(e as Error).message})`));
    });
    return src.pipe(guard);
  }

  private async bodyBytes(res: Response, what: string, max: number): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of this.bodyStream(res, what, max)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  private async credentials(): Promise<Credentials | undefined> {
    if (this.creds === null) this.creds = await credentialsFor(this.ref.host);
    return this.creds;
  }

  private async authenticate(challenge: string, scope: string): Promise<void> {
    const { scheme, params } = parseChallenge(challenge);
    const creds = await this.credentials();
    if (scheme === 'basic') {
      if (!creds) throw new RegistryError(`${this.ref.host}: authentication required (no credentials for it in the Docker config; docker login or set DOCKER_CONFIG)`, 401);
      this.basic = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
      return;
    }
    if (scheme !== 'bearer' || !params.realm) throw new RegistryError(`${this.ref.host}: unsupported authentication challenge "${challenge}"`, 401);
    const url = new URL(params.realm);
    if (params.service) url.searchParams.set('service', params.service);
    url.searchParams.set('scope', params.scope ?? scope);
    const headers: Record<string, string> = {};
    if (creds) headers.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
    const r = await tlsFetch(url, { headers });
    if (!r.ok) throw new RegistryError(`${this.ref.host}: token request failed (${r.status})${creds ? '' : ': no credentials'}`, r.status);
    const body = JSON.parse((await this.bodyBytes(r, `${this.ref.host}: token`, MAX_DOCUMENT)).toString('utf8')) as { token?: string; access_token?: string };
    this.token = body.token ?? body.access_token;
  }

  /** One request with auth and retries. `body` may be a factory (a stream can only be sent once). */
  async request(method: string, path: string, init: { headers?: Record<string, string>; body?: () => RequestBody | undefined; push?: boolean; okStatuses?: number[] } = {}): Promise<Response> {
    const scope = `repository:${this.ref.repository}:${init.push ? 'pull,push' : 'pull'}`;
    const retries = this.opts.retries ?? 3;
    let authTried = false;
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { ...(init.headers ?? {}) };
      if (this.token) headers.authorization = `Bearer ${this.token}`;
      else if (this.basic) headers.authorization = this.basic;
      let res: Response;
      // a server that never answers, or stops sending, is given up on: no headers within the
      // timeout, or no body bytes for as long, aborts the request (the body stream errors)
      const ac = new AbortController();
      const limit = timeoutMs();
      const headerTimer = setTimeout(() => ac.abort(new Error(`no response within ${limit / 1000} s`)), limit);
      try {
        const body = init.body?.();
        res = await tlsFetch(path.startsWith('http') ? path : `${this.base}${path}`, {
          method,
          headers,
          redirect: 'follow',
          signal: ac.signal,
          ...(body !== undefined ? { body, duplex: 'half' } : {}),
        } as RequestInit);
        clearTimeout(headerTimer);
        this.idle.set(res, ac);
      } catch (e) {
        clearTimeout(headerTimer);
        if (attempt < retries) {
          await sleep(200 * 2 ** attempt);
          continue;
        }
        throw new RegistryError(`${this.ref.host}: cannot connect (${fetchFailureReason(e)})`);
      }
      if (res.status === 401 && !authTried) {
        authTried = true;
        const ch = res.headers.get('www-authenticate');
        await res.arrayBuffer().catch(() => undefined);
        if (!ch) throw new RegistryError(`${this.ref.host}: unauthorized`, 401);
        await this.authenticate(ch, scope);
        attempt--;
        continue;
      }
      if (res.status >= 500 && attempt < retries) {
        await res.arrayBuffer().catch(() => undefined);
        await sleep(200 * 2 ** attempt);
        continue;
      }
      if (res.status === 401 || res.status === 403) {
        await res.arrayBuffer().catch(() => undefined);
        throw new RegistryError(`${this.ref.host}/${this.ref.repository}: access denied (${res.status}): check the credentials for ${this.ref.host} in the Docker config`, res.status);
      }
      return res;
    }
  }

  async getManifest(reference: string): Promise<{ bytes: Buffer; mediaType: string }> {
    const accept = [
      'application/vnd.oci.image.index.v1+json',
      'application/vnd.oci.image.manifest.v1+json',
      'application/vnd.docker.distribution.manifest.list.v2+json',
      'application/vnd.docker.distribution.manifest.v2+json',
    ].join(', ');
    const r = await this.request('GET', `/v2/${this.ref.repository}/manifests/${reference}`, { headers: { accept } });
    if (r.status === 404) throw new RegistryError(`${this.ref.display}: not found in the registry`, 404);
    if (!r.ok) throw new RegistryError(`${this.ref.display}: manifest request failed (${r.status})`, r.status);
    // a manifest is small (containerd caps them at 4 MiB): an endless one is refused, not read
    const bytes = await this.bodyBytes(r, `manifest of ${this.ref.display}`, MAX_DOCUMENT);
    const mediaType = (r.headers.get('content-type') ?? '').split(';')[0] ?? '';
    return { bytes, mediaType };
  }

  /** A blob's bytes as a stream, never more than `size` (its descriptor's size). */
  async blob(digest: string, size: number): Promise<Readable> {
    const r = await this.request('GET', `/v2/${this.ref.repository}/blobs/${parseDigest(digest, 'registry blob')}`);
    if (!r.ok || !r.body) throw new RegistryError(`${this.ref.display}: blob ${digest} request failed (${r.status})`, r.status);
    return this.bodyStream(r, `blob ${digest}`, size);
  }

  /** A small blob (a config) read whole, at most its descriptor's size and at most 4 MiB. */
  async blobBytes(digest: string, size: number, cap = MAX_DOCUMENT): Promise<Buffer> {
    const r = await this.request('GET', `/v2/${this.ref.repository}/blobs/${parseDigest(digest, 'registry blob')}`);
    if (!r.ok || !r.body) throw new RegistryError(`${this.ref.display}: blob ${digest} request failed (${r.status})`, r.status);
    return this.bodyBytes(r, `blob ${digest}`, Math.min(size, cap));
  }

  async hasBlob(digest: string): Promise<boolean> {
    const r = await this.request('HEAD', `/v2/${this.ref.repository}/blobs/${parseDigest(digest, 'registry blob')}`, { push: true });
    return r.ok;
  }

  /** Cross-repository mount: true when the registry linked the blob from `from` without an upload. */
  async mountBlob(digest: string, from: string): Promise<boolean> {
    if (from === this.ref.repository) return false;
    const m = await this.request('POST', `/v2/${this.ref.repository}/blobs/uploads/?mount=${encodeURIComponent(parseDigest(digest, 'registry blob'))}&from=${encodeURIComponent(from)}`, { push: true });
    await m.arrayBuffer().catch(() => undefined);
    return m.status === 201;
  }

  /** Monolithic upload: POST for a session, then PUT with the digest. */
  async uploadBlob(digest: string, size: number, body: () => RequestBody): Promise<void> {
    const start = await this.request('POST', `/v2/${this.ref.repository}/blobs/uploads/`, { push: true });
    await start.arrayBuffer().catch(() => undefined);
    const loc = start.headers.get('location');
    if (start.status !== 202 || !loc) throw new RegistryError(`${this.ref.display}: cannot start an upload (${start.status})`, start.status);
    const url = new URL(loc, this.base);
    url.searchParams.set('digest', digest);
    const put = await this.request('PUT', url.toString(), {
      push: true,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
      body,
    });
    await put.arrayBuffer().catch(() => undefined);
    if (put.status !== 201) throw new RegistryError(`${this.ref.display}: upload of ${digest} failed (${put.status})`, put.status);
  }

  async putManifest(reference: string, bytes: Buffer, mediaType: string): Promise<void> {
    const r = await this.request('PUT', `/v2/${this.ref.repository}/manifests/${reference}`, {
      push: true,
      headers: { 'content-type': mediaType },
      body: () => bytes,
    });
    const text = await r.text().catch(() => '');
    if (r.status !== 201) throw new RegistryError(`${this.ref.display}: manifest upload failed (${r.status}) ${text.slice(0, 200)}`, r.status);
  }
}
