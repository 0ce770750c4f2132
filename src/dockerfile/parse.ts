import { DockerfileParser } from 'dockerfile-ast';
import { DockerfileError } from './errors.js';
import type {
  Command,
  CopyInstr,
  Heredoc,
  Instruction,
  KeyValue,
  MountSpec,
  ParsedDockerfile,
} from './instructions.js';
import { parseGoDuration, parseJsonArray, parseWords } from './words.js';

type FlagMap = Map<string, (string | null)[]>;

const ALLOWED_FLAGS: Record<string, readonly string[]> = {
  FROM: ['platform'],
  RUN: ['mount', 'network', 'security', 'device'],
  COPY: ['from', 'chown', 'chmod', 'link', 'parents', 'exclude'],
  ADD: ['chown', 'chmod', 'link', 'exclude', 'checksum', 'keep-git-dir', 'unpack'],
  HEALTHCHECK: ['interval', 'timeout', 'start-period', 'start-interval', 'retries'],
};

const KNOWN = new Set([
  'FROM', 'RUN', 'CMD', 'LABEL', 'MAINTAINER', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT',
  'VOLUME', 'USER', 'WORKDIR', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL',
]);

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Split raw argument text into the logical command line (continuations joined, comment and
 * empty lines inside a continuation dropped, as Docker does) and the lines after it
 * (heredoc bodies).
 */
export function splitLogical(raw: string, escape: string): { command: string; rest: string[] } {
  const lines = raw.split('\n').map((l) => l.replace(/\r$/, ''));
  const cont = new RegExp(`${escapeRe(escape)}[ \\t]*$`);
  let command = '';
  let i = 0;
  let continuing = false;
  while (i < lines.length) {
    const l = lines[i] as string;
    i++;
    if (continuing && (l.trim() === '' || l.trimStart().startsWith('#'))) continue;
    const m = cont.exec(l);
    if (m) {
      command += l.slice(0, m.index);
      continuing = true;
      continue;
    }
    command += l;
    continuing = false;
    break;
  }
  return { command, rest: lines.slice(i) };
}

interface HeredocMarker {
  name: string;
  quoted: boolean;
  stripTabs: boolean;
  start: number;
  end: number;
}

/** `<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'EOF'` outside quotes in a command line. */
export function findHeredocMarkers(command: string): HeredocMarker[] {
  const out: HeredocMarker[] = [];
  let quote = '';
  for (let i = 0; i < command.length; i++) {
    const c = command[i];
    if (quote) {
      if (c === quote) quote = '';
      else if (c === '\\' && quote === '"') i++;
      continue;
    }
    if (c === "'" || c === '"') {
      quote = c;
      continue;
    }
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === '<' && command[i + 1] === '<' && command[i + 2] !== '<' && command[i - 1] !== '<') {
      const m = /^<<(-?)(?:"([^"]+)"|'([^']+)'|([A-Za-z0-9_.-]+))/.exec(command.slice(i));
      if (m) {
        const name = m[2] ?? m[3] ?? m[4] ?? '';
        out.push({ name, quoted: m[2] !== undefined || m[3] !== undefined, stripTabs: m[1] === '-', start: i, end: i + m[0].length });
        i += m[0].length - 1;
      }
    }
  }
  return out;
}

function readHeredocs(markers: HeredocMarker[], rest: string[], err: (msg: string) => never): { docs: Heredoc[]; rawLines: string[] } {
  const docs: Heredoc[] = [];
  let i = 0;
  const rawLines: string[] = [];
  for (const m of markers) {
    const body: string[] = [];
    let closed = false;
    while (i < rest.length) {
      const l = rest[i] as string;
      i++;
      rawLines.push(l);
      const cmp = m.stripTabs ? l.replace(/^\t+/, '') : l;
      if (cmp === m.name) {
        closed = true;
        break;
      }
      body.push(m.stripTabs ? l.replace(/^\t+/, '') : l);
    }
    if (!closed) err(`unterminated heredoc <<${m.name}`);
    docs.push({ name: m.name, content: body.map((b) => `${b}\n`).join(''), quoted: m.quoted, stripTabs: m.stripTabs });
  }
  return { docs, rawLines };
}

function parseCommand(text: string): Command {
  const arr = parseJsonArray(text);
  if (arr) return { form: 'exec', args: arr };
  return { form: 'shell', text: text.trim() };
}

function parseKeyValues(keyword: string, rest: string, escape: string, err: (m: string) => never): KeyValue[] {
  const words = parseWords(rest, escape);
  if (words.length === 0) err(`${keyword} requires at least one argument`);
  if (!(words[0] as string).includes('=')) {
    // legacy `ENV key value with spaces`
    const m = /^\s*(\S+)\s+([\s\S]*)$/.exec(rest);
    if (!m) err(`${keyword} must have two arguments`);
    return [{ key: m[1] as string, value: (m[2] as string).trim() }];
  }
  return words.map((w) => {
    const eq = w.indexOf('=');
    if (eq < 0) err(`Syntax error - can't find = in "${w}". Must be of the form: name=value`);
    if (eq === 0) err(`${keyword} names can not be blank`);
    return { key: w.slice(0, eq), value: w.slice(eq + 1) };
  });
}

export function parseMount(spec: string, err: (m: string) => never): MountSpec {
  const options: Record<string, string> = {};
  for (const part of spec.split(',')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const k = (eq < 0 ? part : part.slice(0, eq)).toLowerCase();
    const v = eq < 0 ? 'true' : part.slice(eq + 1);
    const key = k === 'dst' || k === 'destination' ? 'target' : k === 'src' ? 'source' : k;
    options[key] = v;
  }
  const type = options.type ?? 'bind';
  delete options.type;
  if (!['bind', 'cache', 'tmpfs', 'secret', 'ssh'].includes(type)) err(`unsupported mount type "${type}"`);
  // bind and cache mounts without a target mount at the working directory (BuildKit)
  if (type === 'tmpfs' && !options.target) err(`mount type=${type} requires a target`);
  for (const k of ['uid', 'gid']) if (options[k] !== undefined && !/^\d+$/.test(options[k] as string)) err(`--mount ${k}=${options[k]}: a number is required`);
  if (options.mode !== undefined && !/^[0-7]{1,4}$/.test(options.mode)) err(`--mount mode=${options.mode}: an octal mode is required`);
  return { type: type as MountSpec['type'], options };
}

function boolFlag(flags: FlagMap, name: string, err: (m: string) => never): boolean {
  const v = flags.get(name);
  if (!v) return false;
  const last = v[v.length - 1];
  if (last === null || last === undefined || last === 'true') return true;
  if (last === 'false') return false;
  err(`expecting boolean value for flag --${name}, not: ${last}`);
}

function oneFlag(flags: FlagMap, name: string, err: (m: string) => never): string | undefined {
  const v = flags.get(name);
  if (!v) return undefined;
  if (v.length > 1) err(`duplicate flag specified: --${name}`);
  const x = v[0];
  if (x === null || x === undefined || x === '') err(`missing a value on flag: --${name}`);
  return x;
}

interface FlagSource {
  getFlags?: () => { getName(): string; getValue(): string | null }[];
}

/** Flags by name; dockerfile-ast's getFromFlag() misses --from beside other flags, getFlags() does not. */
function collectFlags(ins: object): FlagMap {
  const flags: FlagMap = new Map();
  const getFlags = (ins as FlagSource).getFlags;
  for (const f of getFlags ? getFlags.call(ins) : []) {
    const list = flags.get(f.getName()) ?? [];
    list.push(f.getValue());
    flags.set(f.getName(), list);
  }
  return flags;
}

interface RawInstruction {
  keyword: string;
  line: number;
  endLine: number;
  raw: string;
  flags: FlagMap;
  text: string;
}

/** Parse Dockerfile text into typed instructions. Never calls dockerfile-ast's lossy helpers. */
export function parseDockerfile(source: string, file = 'Dockerfile'): ParsedDockerfile {
  const src = source.replace(/^\uFEFF/, '');
  if (src.includes('\0')) throw new DockerfileError(file, 1, 'file is binary, not a Dockerfile');
  const df = DockerfileParser.parse(src);
  const escape = df.getEscapeCharacter();
  const directives: Record<string, string> = {};
  for (const d of df.getDirectives()) directives[d.getName().toLowerCase()] = d.getValue();
  if (directives.escape !== undefined && directives.escape !== '\\' && directives.escape !== '`') {
    throw new DockerfileError(file, 1, `invalid escape token '${directives.escape}' does not match ` + '` or \\');
  }
  const srcLines = src.split('\n');
  const instructions: Instruction[] = [];
  for (const ins of df.getInstructions()) {
    const r = ins.getRange();
    const flags = collectFlags(ins);
    const fullText = srcLines.slice(r.start.line, r.end.line + 1).join('\n');
    const raw: RawInstruction = {
      keyword: ins.getKeyword().toUpperCase(),
      line: r.start.line + 1,
      endLine: r.end.line + 1,
      raw: ins.getRawArgumentsContent() ?? '',
      flags,
      text: splitLogical(fullText, escape).command.trim(),
    };
    instructions.push(buildInstruction(raw, file, escape, true));
  }
  if (instructions.length === 0) throw new DockerfileError(file, 1, 'the Dockerfile has no instructions');
  const firstNonArg = instructions.find((i) => i.kind !== 'ARG');
  if (!firstNonArg || firstNonArg.kind !== 'FROM') {
    const at = firstNonArg ?? instructions[0];
    throw new DockerfileError(file, at?.line ?? 1, `no build stage: ${at?.kind ?? 'file'} before the first FROM`);
  }
  return { file, escape, directives, instructions };
}

function buildInstruction(ri: RawInstruction, file: string, escape: string, allowOnbuild: boolean): Instruction {
  const err = (msg: string): never => {
    throw new DockerfileError(file, ri.line, msg);
  };
  const kw = ri.keyword;
  if (!KNOWN.has(kw)) err(`unknown instruction: ${kw}`);
  const allowed = ALLOWED_FLAGS[kw] ?? [];
  for (const name of ri.flags.keys()) {
    if (!allowed.includes(name)) err(`unknown flag: --${name} (${kw} accepts ${allowed.length ? allowed.map((a) => `--${a}`).join(', ') : 'no flags'})`);
  }
  const { command, rest } = splitLogical(ri.raw, escape);
  const base = { line: ri.line, endLine: ri.endLine, text: ri.text };
  const args = command.trim();
  const needArgs = (): void => {
    if (args === '') err(`${kw} requires at least one argument`);
  };

  switch (kw) {
    case 'FROM': {
      needArgs();
      const words = args.split(/\s+/);
      if (words.length !== 1 && !(words.length === 3 && (words[1] as string).toLowerCase() === 'as')) {
        err('FROM requires either one or three arguments: FROM <image> [AS <name>]');
      }
      const stageName = words.length === 3 ? (words[2] as string) : undefined;
      if (stageName !== undefined && !/^[a-z][a-z0-9-_.]*$/i.test(stageName)) err(`invalid name for build stage: "${stageName}", name can't start with a number or contain symbols`);
      const platform = oneFlag(ri.flags, 'platform', err);
      return { kind: 'FROM', ...base, image: words[0] as string, ...(stageName ? { stageName: stageName.toLowerCase() } : {}), ...(platform ? { platform } : {}) };
    }
    case 'RUN': {
      needArgs();
      const mounts = (ri.flags.get('mount') ?? []).map((m) => parseMount(m ?? '', err));
      const network = oneFlag(ri.flags, 'network', err);
      if (network !== undefined && !['default', 'none', 'host'].includes(network)) err(`unsupported network mode "${network}" (default, none or host)`);
      const security = oneFlag(ri.flags, 'security', err);
      if (security !== undefined && security !== 'sandbox' && security !== 'insecure') err(`unsupported --security=${security} (sandbox or insecure)`);
      const markers = findHeredocMarkers(args);
      const { docs, rawLines } = readHeredocs(markers, rest, err);
      let cmd: Command;
      if (markers.length === 0) cmd = parseCommand(args);
      else if (markers.length === 1 && args === args.slice((markers[0] as HeredocMarker).start, (markers[0] as HeredocMarker).end)) {
        // `RUN <<EOF` alone: the body is the script
        cmd = { form: 'shell', text: (docs[0] as Heredoc).content.replace(/\n$/, '') };
      } else {
        // a command reading heredocs: hand the whole text to the shell, which implements them
        cmd = { form: 'shell', text: [args, ...rawLines].join('\n') };
      }
      return {
        kind: 'RUN', ...base, cmd, heredocs: docs, mounts,
        ...(network ? { network: network as 'default' | 'none' | 'host' } : {}),
        ...(security ? { security } : {}),
      };
    }
    case 'CMD':
    case 'ENTRYPOINT': {
      // an empty CMD/ENTRYPOINT is allowed only in exec form ([])
      if (args === '') err(`${kw} requires at least one argument`);
      return { kind: kw, ...base, cmd: parseCommand(args) };
    }
    case 'SHELL': {
      const arr = parseJsonArray(args);
      if (!arr) err('SHELL requires the arguments to be in JSON form');
      if ((arr as string[]).length === 0) err('SHELL requires at least one argument');
      return { kind: 'SHELL', ...base, shell: arr as string[] };
    }
    case 'ENV':
    case 'LABEL': {
      needArgs();
      return { kind: kw, ...base, pairs: parseKeyValues(kw, args, escape, err) };
    }
    case 'ARG': {
      needArgs();
      const words = parseWords(args, escape);
      return {
        kind: 'ARG', ...base,
        args: words.map((w) => {
          const eq = w.indexOf('=');
          const name = eq < 0 ? w : w.slice(0, eq);
          if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) err(`invalid ARG name "${name}"`);
          return eq < 0 ? { name } : { name, default: w.slice(eq + 1) };
        }),
      };
    }
    case 'COPY':
    case 'ADD': {
      const markers = findHeredocMarkers(args);
      const { docs } = readHeredocs(markers, rest, err);
      let words: string[];
      const arr = parseJsonArray(args);
      if (arr) words = arr;
      else {
        // heredoc markers become one word each (`<<EOF`)
        let text = args;
        for (const m of [...markers].reverse()) text = `${text.slice(0, m.start)} <<${m.name} ${text.slice(m.end)}`;
        words = text.trim().split(/\s+/).filter((w) => w !== '');
      }
      if (words.length < 2) err(`${kw} requires at least two arguments, but only ${words.length} provided`);
      const from = kw === 'COPY' ? oneFlag(ri.flags, 'from', err) : undefined;
      const chown = oneFlag(ri.flags, 'chown', err);
      const chmod = oneFlag(ri.flags, 'chmod', err);
      const checksum = kw === 'ADD' ? oneFlag(ri.flags, 'checksum', err) : undefined;
      if (chmod !== undefined && !/^[0-7]{3,4}$/.test(chmod) && !/^[ugoa]*[-+=][rwxXst]*(,[ugoa]*[-+=][rwxXst]*)*$/.test(chmod)) err(`invalid chmod value "${chmod}"`);
      const instr: CopyInstr = {
        kind: kw, ...base,
        sources: words.slice(0, -1),
        dest: words[words.length - 1] as string,
        heredocs: docs,
        link: boolFlag(ri.flags, 'link', err),
        parents: boolFlag(ri.flags, 'parents', err),
        exclude: (ri.flags.get('exclude') ?? []).map((e) => e ?? '').filter((e) => e !== ''),
        keepGitDir: boolFlag(ri.flags, 'keep-git-dir', err),
      };
      if (from !== undefined) instr.from = from;
      if (chown !== undefined) instr.chown = chown;
      if (chmod !== undefined) instr.chmod = chmod;
      if (checksum !== undefined) instr.checksum = checksum;
      if (ri.flags.has('unpack')) instr.unpack = boolFlag(ri.flags, 'unpack', err);
      return instr;
    }
    case 'MAINTAINER':
      needArgs();
      return { kind: 'MAINTAINER', ...base, name: args };
    case 'EXPOSE':
      needArgs();
      return { kind: 'EXPOSE', ...base, ports: args.split(/\s+/) };
    case 'VOLUME': {
      needArgs();
      const arr = parseJsonArray(args);
      const paths = arr ?? args.split(/\s+/);
      if (paths.some((p) => p.trim() === '')) err('VOLUME specified can not be an empty string');
      return { kind: 'VOLUME', ...base, paths };
    }
    case 'USER':
      needArgs();
      return { kind: 'USER', ...base, user: args };
    case 'WORKDIR':
      needArgs();
      return { kind: 'WORKDIR', ...base, path: args };
    case 'STOPSIGNAL':
      needArgs();
      return { kind: 'STOPSIGNAL', ...base, signal: args };
    case 'HEALTHCHECK': {
      needArgs();
      const m = /^(\S+)\s*([\s\S]*)$/.exec(args) as RegExpExecArray;
      const sub = (m[1] as string).toUpperCase();
      if (sub === 'NONE') {
        if ((m[2] as string).trim() !== '') err('HEALTHCHECK NONE takes no arguments');
        if (ri.flags.size) err('HEALTHCHECK NONE takes no options');
        return { kind: 'HEALTHCHECK', ...base, none: true };
      }
      if (sub !== 'CMD') err(`unknown type "${m[1]}" in HEALTHCHECK (try CMD)`);
      const body = (m[2] as string).trim();
      if (body === '') err('HEALTHCHECK CMD requires a command');
      const dur = (name: string): number | undefined => {
        const v = oneFlag(ri.flags, name, err);
        if (v === undefined) return undefined;
        const ns = parseGoDuration(v);
        if (ns === undefined) err(`invalid duration for --${name}: "${v}"`);
        if ((ns as number) !== 0 && (ns as number) < 1e6) err(`--${name} cannot be less than 1ms`);
        return ns;
      };
      const retriesText = oneFlag(ri.flags, 'retries', err);
      let retries: number | undefined;
      if (retriesText !== undefined) {
        retries = Number(retriesText);
        if (!Number.isInteger(retries) || retries < 0) err(`--retries must be a non-negative integer, not "${retriesText}"`);
      }
      const out = { kind: 'HEALTHCHECK' as const, ...base, none: false, test: parseCommand(body) };
      const interval = dur('interval');
      const timeout = dur('timeout');
      const startPeriod = dur('start-period');
      const startInterval = dur('start-interval');
      return {
        ...out,
        ...(interval !== undefined ? { intervalNs: interval } : {}),
        ...(timeout !== undefined ? { timeoutNs: timeout } : {}),
        ...(startPeriod !== undefined ? { startPeriodNs: startPeriod } : {}),
        ...(startInterval !== undefined ? { startIntervalNs: startInterval } : {}),
        ...(retries !== undefined ? { retries } : {}),
      };
    }
    case 'ONBUILD': {
      needArgs();
      if (!allowOnbuild) err('ONBUILD ONBUILD is not allowed');
      const inner = DockerfileParser.parse(args).getInstructions()[0];
      if (!inner) err('ONBUILD requires an instruction');
      const innerKw = (inner as NonNullable<typeof inner>).getKeyword().toUpperCase();
      if (innerKw === 'ONBUILD') err('Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
      if (innerKw === 'FROM' || innerKw === 'MAINTAINER') err(`${innerKw} isn't allowed as an ONBUILD trigger`);
      const trigger = parseTrigger(args, file, ri.line, escape);
      return { kind: 'ONBUILD', ...base, expression: args, trigger };
    }
  }
  return err(`unknown instruction: ${kw}`);
}

/** Parse one instruction's text (an ONBUILD trigger) as if it stood at `line`. */
export function parseTrigger(expression: string, file: string, line: number, escape = '\\'): Instruction {
  const df = DockerfileParser.parse(expression);
  const ins = df.getInstructions()[0];
  if (!ins) throw new DockerfileError(file, line, 'ONBUILD requires an instruction');
  const flags = collectFlags(ins);
  return buildInstruction(
    { keyword: ins.getKeyword().toUpperCase(), line, endLine: line, raw: ins.getRawArgumentsContent() ?? '', flags, text: expression.trim() },
    file,
    escape,
    false,
  );
}
