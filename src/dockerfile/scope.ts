import { DockerfileError } from './errors.js';
import type { ArgInstr, CopyInstr, Instruction } from './instructions.js';
import { ExpansionError, type Lookup, expandWord, expandWords } from './lexer.js';
import { type Platform, platformArgs } from '../oci/platform.js';

/** ARGs Docker defines without an ARG line: proxies (passed to RUN, kept out of history/keys) and platform. */
export const PROXY_ARGS = [
  'HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy',
  'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy',
] as const;

/** Variables in effect at a point of a stage: the image's ENV beats a same-named ARG, as in Docker. */
export class Scope {
  /** declared ARGs of this scope with their value (undefined: declared, no value) */
  readonly args = new Map<string, string | undefined>();
  /** ENV in effect, in declaration order */
  readonly env = new Map<string, string>();

  constructor(
    readonly file: string,
    readonly escape: string,
    /** --build-arg values */
    readonly buildArgs: ReadonlyMap<string, string>,
    /** global ARGs (before the first FROM), for re-declaration without a value */
    readonly globals?: Scope,
    /** names of build-args some ARG line declared (shared across scopes for the "unused" warning) */
    readonly consumed: Set<string> = new Set(),
    /** the platform ARGs' values (BUILDPLATFORM, TARGETARCH, …): what a bare `ARG TARGETARCH` takes */
    readonly platform: Readonly<Record<string, string>> = platformArgs(),
  ) {}

  readonly lookup: Lookup = (name) => {
    if (this.env.has(name)) return this.env.get(name);
    return this.args.get(name);
  };

  expand(word: string, line: number, used?: Set<string>): string {
    try {
      return expandWord(word, this.lookup, this.escape, used);
    } catch (e) {
      if (e instanceof ExpansionError) throw new DockerfileError(this.file, line, e.message);
      throw e;
    }
  }

  expandList(text: string, line: number): string[] {
    try {
      return expandWords(text, this.lookup, this.escape);
    } catch (e) {
      if (e instanceof ExpansionError) throw new DockerfileError(this.file, line, e.message);
      throw e;
    }
  }

  /** Apply an ARG line: build-arg beats default; a bare ARG re-declaring a global takes its value. */
  declare(instr: ArgInstr): void {
    for (const a of instr.args) {
      let value: string | undefined;
      if (this.buildArgs.has(a.name)) {
        value = this.buildArgs.get(a.name);
        this.consumed.add(a.name);
      } else if (a.default !== undefined) value = this.expand(a.default, instr.line);
      else if (this.globals?.args.has(a.name)) value = this.globals.args.get(a.name);
      else if (a.name in this.platform) value = this.platform[a.name];
      this.args.set(a.name, value);
    }
  }

  setEnv(pairs: readonly { key: string; value: string }[], line: number): void {
    // every value is expanded against the env before this instruction (`ENV a=1 b=$a` sees the old a)
    const expanded = pairs.map((p) => ({ key: this.expand(p.key, line), value: this.expand(p.value, line) }));
    for (const p of expanded) {
      if (p.key === '') throw new DockerfileError(this.file, line, 'ENV names can not be blank');
      this.env.set(p.key, p.value); // a redefined name keeps its place, as in Docker's config Env
    }
  }

  loadEnv(list: readonly string[] | undefined): void {
    for (const kv of list ?? []) {
      const eq = kv.indexOf('=');
      if (eq > 0) this.env.set(kv.slice(0, eq), kv.slice(eq + 1));
    }
  }

  envList(): string[] {
    return [...this.env].map(([k, v]) => `${k}=${v}`);
  }

  /** Build args in scope for RUN (declared, with a value, not shadowed by ENV), sorted for stable keys. */
  runArgs(): [string, string][] {
    const out: [string, string][] = [];
    for (const [k, v] of this.args) if (v !== undefined && !this.env.has(k)) out.push([k, v]);
    return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  /** Proxy build-args, which reach RUN without an ARG line (and stay out of keys and history). */
  proxyEnv(): [string, string][] {
    const out: [string, string][] = [];
    for (const p of PROXY_ARGS) {
      const v = this.buildArgs.get(p);
      if (v !== undefined && !this.args.has(p)) {
        out.push([p, v]);
        this.consumed.add(p);
      }
    }
    return out;
  }

  /** A child scope for a stage: fresh ARGs, ENV loaded by the caller from the base image. */
  child(): Scope {
    return new Scope(this.file, this.escape, this.buildArgs, this.globals ?? this, this.consumed, this.platform);
  }
}

/** The global scope: ARGs before the first FROM plus the platform ARGs, for FROM lines. */
export function globalScope(file: string, escape: string, buildArgs: ReadonlyMap<string, string>, globalArgs: readonly ArgInstr[], target?: Platform): Scope {
  const platform = platformArgs(target);
  const s = new Scope(file, escape, buildArgs, undefined, new Set(), platform);
  for (const [k, v] of Object.entries(platform)) s.args.set(k, buildArgs.get(k) ?? v);
  for (const a of globalArgs) s.declare(a);
  return s;
}

/**
 * The instruction with every field Docker expands replaced by its expansion (ADD COPY ENV EXPOSE
 * FROM LABEL STOPSIGNAL USER VOLUME WORKDIR). RUN/CMD/ENTRYPOINT/SHELL/HEALTHCHECK bodies are left
 * to the shell; ENV and ARG are applied by the caller through the scope.
 */
export function expandInstruction<T extends Instruction>(instr: T, scope: Scope): T {
  return expandAny(instr, scope) as T;
}

function expandAny(instr: Instruction, scope: Scope): Instruction {
  const x = (w: string): string => scope.expand(w, instr.line);
  switch (instr.kind) {
    case 'COPY':
    case 'ADD': {
      const out: CopyInstr = { ...instr, sources: instr.sources.map((s) => (s.startsWith('<<') ? s : x(s))), dest: x(instr.dest) };
      if (instr.from !== undefined) out.from = x(instr.from);
      if (instr.chown !== undefined) out.chown = x(instr.chown);
      if (instr.chmod !== undefined) out.chmod = x(instr.chmod);
      out.exclude = instr.exclude.map(x);
      out.heredocs = instr.heredocs.map((h) => (h.quoted ? h : { ...h, content: expandVarsOnly(h.content, scope) }));
      return out;
    }
    case 'LABEL':
      return { ...instr, pairs: instr.pairs.map((p) => ({ key: x(p.key), value: x(p.value) })) };
    case 'EXPOSE':
      return { ...instr, ports: instr.ports.flatMap((p) => scope.expandList(p, instr.line)) };
    case 'VOLUME':
      return { ...instr, paths: instr.paths.map(x) };
    case 'USER':
      return { ...instr, user: x(instr.user) };
    case 'WORKDIR':
      return { ...instr, path: x(instr.path) };
    case 'STOPSIGNAL':
      return { ...instr, signal: x(instr.signal) };
    case 'FROM':
      return { ...instr, image: x(instr.image), ...(instr.platform ? { platform: x(instr.platform) } : {}) };
    default:
      return instr;
  }
}

/** Heredoc bodies: variables expand, quotes and backslashes stay as written. */
function expandVarsOnly(text: string, scope: Scope): string {
  return text.replace(/\$(\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)/g, (m) => {
    try {
      return expandWord(m, scope.lookup, scope.escape);
    } catch {
      return m;
    }
  });
}
