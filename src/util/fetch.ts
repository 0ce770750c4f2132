import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Agent } from 'undici';

/*
 * Node 20 reads and parses the file NODE_EXTRA_CA_CERTS names at every start, before any code
 * runs: ~95 ms for a system bundle on this machine kind, where `node -e 1` is 37 ms without it.
 * Most lbuild commands speak no TLS, so bin/lbuild.js's shebang starts Node without the variable
 * and hands its value over (LBUILD_DEFERRED_CA_CERTS); the launcher puts it back for child
 * processes and leaves the file name here. A TLS request then trusts what Node would have trusted
 * at start-up: the bundled roots and the file's certificates. (Under --use-openssl-ca Node's roots
 * are the system's, which Node 20 cannot list: run `node bin/lbuild.js` there to have Node load
 * the file itself.)
 */

const DEFERRED = Symbol.for('lbuild.deferredCaCerts');

/** The CA file whose loading the launcher deferred, if it deferred one. */
function deferredCaFile(): string | undefined {
  const f = (globalThis as Record<symbol, unknown>)[DEFERRED];
  return typeof f === 'string' && f !== '' ? f : undefined;
}

let agent: Agent | null | undefined;

/** The dispatcher trusting the deferred CAs; null when none were deferred or the file is unreadable. */
function deferredAgent(): Agent | null {
  if (agent !== undefined) return agent;
  const file = deferredCaFile();
  agent = null;
  if (file === undefined) return agent;
  let extra: string;
  try {
    extra = readFileSync(file, 'utf8');
  } catch (e) {
    // what Node itself does with an unreadable file: a warning, and the bundled roots only
    process.emitWarning(`Ignoring extra certs from \`${file}\`, load failed: ${(e as Error).message}`);
    return agent;
  }
  // undici is the package Node's own fetch is built from (the same major version); it and node:tls
  // are loaded only here, not at every start
  const require = createRequire(import.meta.url);
  const { rootCertificates } = require('node:tls') as typeof import('node:tls');
  const { Agent: UndiciAgent } = require('undici') as typeof import('undici');
  agent = new UndiciAgent({ connect: { ca: [...rootCertificates, extra] } });
  return agent;
}

/** fetch(), with the CAs of a deferred NODE_EXTRA_CA_CERTS trusted (an http URL may redirect to https). */
export function tlsFetch(url: string | URL, init: RequestInit = {}): Promise<Response> {
  const dispatcher = deferredAgent();
  // undici's init takes a dispatcher; the DOM types do not know it
  return fetch(url, dispatcher ? ({ ...init, dispatcher } as RequestInit) : init);
}

/** Why a fetch() threw, in words: undici says "fetch failed" and puts the reason in its cause. */
export function fetchFailureReason(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  return e.cause instanceof Error ? e.cause.message : e.message;
}
