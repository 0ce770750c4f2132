/**
 * Docker's word expansion for Dockerfile instructions (what moby/buildkit's shell lexer does):
 * quotes are removed, escapes applied, `$v` `${v}` `${v:-w}` `${v-w}` `${v:+w}` `${v+w}`
 * `${v:?msg}` `${v?msg}` expanded, plus the newer pattern forms `${v#p}` `${v##p}` `${v%p}`
 * `${v%%p}` `${v/p/r}` `${v//p/r}`. Single quotes keep everything literal.
 */

export type Lookup = (name: string) => string | undefined;

export class ExpansionError extends Error {}

class Scanner {
  pos = 0;
  constructor(readonly s: string) {}
  peek(off = 0): string | undefined {
    return this.s[this.pos + off];
  }
  next(): string | undefined {
    return this.s[this.pos++];
  }
  eof(): boolean {
    return this.pos >= this.s.length;
  }
}

interface Ctx {
  lookup: Lookup;
  escape: string;
  /** names looked up, so that callers (cache keys, "unused build-arg" warnings) know what was used */
  used: Set<string>;
}

/** Expand one word; whitespace is kept. */
export function expandWord(word: string, lookup: Lookup, escape = '\\', used?: Set<string>): string {
  const ctx: Ctx = { lookup, escape, used: used ?? new Set() };
  const sc = new Scanner(word);
  const out = processUntil(sc, ctx, undefined, false);
  return out.words.join('');
}

/** Expand and split on unquoted whitespace (Docker's ProcessWords). */
export function expandWords(text: string, lookup: Lookup, escape = '\\', used?: Set<string>): string[] {
  const ctx: Ctx = { lookup, escape, used: used ?? new Set() };
  const sc = new Scanner(text);
  return processUntil(sc, ctx, undefined, true).words;
}

interface Processed {
  words: string[];
}

function processUntil(sc: Scanner, ctx: Ctx, stop: string | undefined, split: boolean): Processed {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  const flush = (): void => {
    if (inWord) words.push(cur);
    cur = '';
    inWord = false;
  };
  for (;;) {
    if (sc.eof()) {
      if (stop !== undefined) throw new ExpansionError(`missing '${stop}'`);
      break;
    }
    const ch = sc.peek() as string;
    if (stop !== undefined && ch === stop) {
      sc.next();
      break;
    }
    if (split && /\s/.test(ch)) {
      sc.next();
      flush();
      continue;
    }
    inWord = true;
    if (ch === "'") {
      cur += singleQuoted(sc);
    } else if (ch === '"') {
      cur += doubleQuoted(sc, ctx);
    } else if (ch === '$') {
      const v = dollar(sc, ctx);
      if (split) {
        // unquoted expansion results are split like the shell would (ProcessWords)
        const parts = v.split(/\s+/);
        cur += parts[0] ?? '';
        for (const p of parts.slice(1)) {
          words.push(cur);
          cur = p;
        }
      } else cur += v;
    } else if (ch === ctx.escape) {
      sc.next();
      if (sc.eof()) {
        cur += ch; // a trailing escape character stays
        break;
      }
      cur += sc.next() as string;
    } else {
      cur += sc.next() as string;
    }
  }
  if (split) flush();
  else words.push(cur);
  return { words };
}

function singleQuoted(sc: Scanner): string {
  sc.next(); // '
  let out = '';
  for (;;) {
    const ch = sc.next();
    if (ch === undefined) throw new ExpansionError('unexpected end of statement while looking for matching single-quote');
    if (ch === "'") return out;
    out += ch;
  }
}

function doubleQuoted(sc: Scanner, ctx: Ctx): string {
  sc.next(); // "
  let out = '';
  for (;;) {
    const ch = sc.peek();
    if (ch === undefined) throw new ExpansionError('unexpected end of statement while looking for matching double-quote');
    if (ch === '"') {
      sc.next();
      return out;
    }
    if (ch === '$') {
      out += dollar(sc, ctx);
      continue;
    }
    if (ch === ctx.escape) {
      sc.next();
      const n = sc.peek();
      if (n === undefined) throw new ExpansionError('unexpected end of statement while looking for matching double-quote');
      // inside double quotes only these are escapable; otherwise the escape character stays
      if (n === '"' || n === '$' || n === ctx.escape) {
        out += n;
        sc.next();
      } else out += ch;
      continue;
    }
    out += sc.next() as string;
  }
}

function isNameStart(c: string | undefined): boolean {
  return c !== undefined && /[A-Za-z_]/.test(c);
}

function readName(sc: Scanner): string {
  let name = '';
  while (!sc.eof() && /[A-Za-z0-9_]/.test(sc.peek() as string)) name += sc.next() as string;
  return name;
}

function lookupVar(ctx: Ctx, name: string): string | undefined {
  ctx.used.add(name);
  return ctx.lookup(name);
}

function dollar(sc: Scanner, ctx: Ctx): string {
  sc.next(); // $
  const ch = sc.peek();
  if (ch === undefined) return '$';
  if (ch === '{') {
    sc.next();
    const name = readName(sc);
    if (name === '') throw new ExpansionError(`bad substitution: missing variable name after '\${'`);
    const value = lookupVar(ctx, name);
    const op = sc.next();
    if (op === undefined) throw new ExpansionError(`missing '}' after \${${name}`);
    if (op === '}') return value ?? '';
    if (op === ':') {
      const mod = sc.next();
      const word = processUntil(sc, ctx, '}', false).words.join('');
      const setNonEmpty = value !== undefined && value !== '';
      if (mod === '-') return setNonEmpty ? (value as string) : word;
      if (mod === '+') return setNonEmpty ? word : '';
      if (mod === '?') {
        if (!setNonEmpty) throw new ExpansionError(`${name}: ${word || 'is not allowed to be unset'}`);
        return value as string;
      }
      throw new ExpansionError(`unsupported modifier (:${mod ?? ''}) in substitution`);
    }
    if (op === '-' || op === '+' || op === '?') {
      const word = processUntil(sc, ctx, '}', false).words.join('');
      if (op === '-') return value !== undefined ? value : word;
      if (op === '+') return value !== undefined ? word : '';
      if (value === undefined) throw new ExpansionError(`${name}: ${word || 'is not allowed to be unset'}`);
      return value;
    }
    if (op === '#' || op === '%') {
      const longest = sc.peek() === op;
      if (longest) sc.next();
      const pattern = processUntil(sc, ctx, '}', false).words.join('');
      return trimPattern(value ?? '', pattern, op === '#', longest);
    }
    if (op === '/') {
      const all = sc.peek() === '/';
      if (all) sc.next();
      const pattern = processUntil(sc, ctx, '/', false).words.join('');
      const repl = processUntil(sc, ctx, '}', false).words.join('');
      return replacePattern(value ?? '', pattern, repl, all);
    }
    throw new ExpansionError(`unsupported modifier (${op}) in substitution`);
  }
  if (/[0-9]/.test(ch)) {
    sc.next();
    return lookupVar(ctx, ch) ?? '';
  }
  if (!isNameStart(ch)) return '$';
  return lookupVar(ctx, readName(sc)) ?? '';
}

/** Shell glob pattern (`*`, `?`, `[...]`) → anchored RegExp source. */
function globSource(p: string): string {
  let out = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i] as string;
    if (c === '*') out += '.*';
    else if (c === '?') out += '.';
    else if (c === '[') {
      const j = p.indexOf(']', i + 1);
      if (j < 0) out += '\\[';
      else {
        let cls = p.slice(i + 1, j);
        if (cls.startsWith('!')) cls = `^${cls.slice(1)}`;
        out += `[${cls.replace(/\\/g, '\\\\')}]`;
        i = j;
      }
    } else if (c === '\\' && i + 1 < p.length) {
      out += (p[++i] as string).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    } else out += c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return out;
}

function trimPattern(v: string, pattern: string, prefix: boolean, longest: boolean): string {
  const re = new RegExp(`^${globSource(pattern)}$`, 's');
  if (prefix) {
    const lens = [...Array(v.length + 1).keys()];
    if (longest) lens.reverse();
    for (const n of lens) if (re.test(v.slice(0, n))) return v.slice(n);
  } else {
    const starts = [...Array(v.length + 1).keys()];
    if (!longest) starts.reverse();
    for (const s of starts) if (re.test(v.slice(s))) return v.slice(0, s);
  }
  return v;
}

function replacePattern(v: string, pattern: string, repl: string, all: boolean): string {
  if (pattern === '') return v;
  const re = new RegExp(globSource(pattern), all ? 'gs' : 's');
  return v.replace(re, () => repl);
}
