import { UsageError } from '../errors.js';

/*
 * The part of Go's text/template that `docker inspect -f` is used with: `{{.Field.Sub}}`, `{{.}}`,
 * `{{json .X}}`, `{{index .X 0}}` / `{{index .X "key"}}`, `{{join .X ","}}`, `{{len .X}}`, and
 * `{{-`/`-}}` trimming. Values print as Go's %v does: `[a b]`, `map[k:v]`, `<no value>`.
 */

function goValue(v: unknown): string {
  if (v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (Array.isArray(v)) return `[${v.map(goValue).join(' ')}]`;
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `map[${Object.keys(o).sort().map((k) => `${k}:${goValue(o[k])}`).join(' ')}]`;
  }
  return String(v);
}

function lookup(data: unknown, path: string): unknown {
  if (path === '.') return data;
  let cur: unknown = data;
  for (const part of path.slice(1).split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** One argument: a field path, a quoted string or a number. */
function arg(data: unknown, token: string): unknown {
  if (token.startsWith('.')) return lookup(data, token);
  if (/^"(?:[^"\\]|\\.)*"$/.test(token)) return JSON.parse(token) as string;
  if (/^-?\d+$/.test(token)) return Number(token);
  throw new UsageError(`--format: cannot read ${JSON.stringify(token)} (give .Field, "text" or a number)`);
}

function evaluate(data: unknown, action: string): string {
  const tokens = action.match(/"(?:[^"\\]|\\.)*"|\S+/g) ?? [];
  const [head, ...rest] = tokens;
  if (head === undefined) throw new UsageError('--format: an empty {{ }}');
  if (head.startsWith('.')) {
    if (rest.length) throw new UsageError(`--format: {{${action}}}: one field at a time`);
    return goValue(lookup(data, head));
  }
  const args = rest.map((t) => arg(data, t));
  switch (head) {
    case 'json':
      return JSON.stringify(args[0] ?? null);
    case 'index': {
      let cur = args[0];
      for (const k of args.slice(1)) cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[String(k)] : undefined;
      return goValue(cur);
    }
    case 'join':
      return Array.isArray(args[0]) ? (args[0] as unknown[]).map(goValue).join(String(args[1] ?? '')) : goValue(args[0]);
    case 'len': {
      const v = args[0];
      return String(Array.isArray(v) ? v.length : v && typeof v === 'object' ? Object.keys(v).length : typeof v === 'string' ? v.length : 0);
    }
    default:
      throw new UsageError(`--format: unknown function "${head}" (json, index, join, len)`);
  }
}

export function renderTemplate(template: string, data: unknown): string {
  let out = '';
  let rest = template;
  for (;;) {
    const open = rest.indexOf('{{');
    if (open < 0) return out + rest;
    const close = rest.indexOf('}}', open);
    if (close < 0) throw new UsageError('--format: "{{" without "}}"');
    let text = rest.slice(0, open);
    let action = rest.slice(open + 2, close);
    let after = rest.slice(close + 2);
    if (action.startsWith('-')) {
      text = text.replace(/\s+$/, '');
      action = action.slice(1);
    }
    if (action.endsWith('-')) {
      after = after.replace(/^\s+/, '');
      action = action.slice(0, -1);
    }
    out += text + evaluate(data, action.trim());
    rest = after;
  }
}
