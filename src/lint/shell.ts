import * as path from 'node:path';
import { existsSync } from 'node:fs';
import type { Instruction, RunInstr } from '../dockerfile/instructions.js';

/** The command text of a RUN (exec form joined), for pattern rules. */
export function runText(i: RunInstr): string {
  return i.cmd.form === 'exec' ? i.cmd.args.join(' ') : i.cmd.text;
}

export function isRun(i: Instruction): i is RunInstr {
  return i.kind === 'RUN';
}

/** Simple commands of a shell text, split on `&&`, `||`, `;`, `|` and newlines. */
export function commands(text: string): string[] {
  return text
    .split(/&&|\|\||;|\||\n/)
    .map((c) => c.trim())
    .filter((c) => c !== '');
}

const INSTALLERS: [RegExp, string, string[]][] = [
  [/\b(npm)\s+(install|ci|i)\b/, 'package.json (and package-lock.json)', ['package.json', 'package-lock.json']],
  [/\byarn(\s+install)?\s*($|--|&&)/, 'package.json and yarn.lock', ['package.json', 'yarn.lock']],
  [/\bpnpm\s+(install|i)\b/, 'package.json and pnpm-lock.yaml', ['package.json', 'pnpm-lock.yaml']],
  [/\bpip3?\s+install\b.*\s-r\s/, 'requirements.txt', ['requirements.txt']],
  [/\bbundle\s+install\b/, 'Gemfile and Gemfile.lock', ['Gemfile', 'Gemfile.lock']],
  [/\bgo\s+mod\s+download\b/, 'go.mod and go.sum', ['go.mod', 'go.sum']],
  [/\bcargo\s+(build|fetch)\b/, 'Cargo.toml and Cargo.lock', ['Cargo.toml', 'Cargo.lock']],
  [/\bmvn\b.*\bdependency:(go-offline|resolve)\b/, 'pom.xml', ['pom.xml']],
  [/\bgradle(w)?\b.*\b(dependencies|build)\b|\.\/gradlew\b/, 'build.gradle and settings.gradle', ['build.gradle', 'settings.gradle', 'build.gradle.kts']],
  [/\bcomposer\s+install\b/, 'composer.json and composer.lock', ['composer.json', 'composer.lock']],
];

/** The manifest files to copy first when a RUN installs dependencies, or undefined. */
export function dependencyInstall(text: string): string | undefined {
  return INSTALLERS.find(([re]) => re.test(text))?.[1];
}

/** The manifest file names a dependency install reads (package.json, go.mod, …), or undefined. */
export function dependencyManifests(text: string): string[] | undefined {
  return INSTALLERS.find(([re]) => re.test(text))?.[2];
}

/**
 * Paths a RUN deletes with `rm`, absolute: a relative one is resolved against the RUN's working
 * directory (WORKDIR), unless that is not known (a variable in it).
 */
export function removedPaths(text: string, cwd = '/'): string[] {
  const out: string[] = [];
  for (const c of commands(text)) {
    const words = c.split(/\s+/);
    if (words[0] !== 'rm') continue;
    for (const w of words.slice(1)) {
      if (w.startsWith('-') || w === '') continue;
      if (w.startsWith('/')) out.push(w.replace(/\/+$/, ''));
      else if (!w.includes('$') && !cwd.includes('$')) out.push(path.posix.resolve(cwd, w));
    }
  }
  return out;
}

/** The working directory of each instruction of a stage (WORKDIR instructions applied; `/` at first). */
export function runDirs(instructions: readonly Instruction[]): Map<Instruction, string> {
  const out = new Map<Instruction, string>();
  let cwd = '/';
  for (const i of instructions) {
    if (i.kind === 'WORKDIR') cwd = path.posix.resolve(cwd, i.path);
    out.set(i, cwd);
  }
  return out;
}

/** `[ -f X ]`, `[ -e X ]`, `test -f X` (and `!` of them): the file tested, and whether it must exist. */
function fileTest(cond: string): { file: string; exists: boolean } | undefined {
  const m = /^(!\s*)?(?:\[\s+(!\s+)?-[fe]\s+("?)([^\s"$;&|]+)\3\s+\]|test\s+(!\s+)?-[fe]\s+("?)([^\s"$;&|]+)\6)$/.exec(cond.trim());
  if (!m) return undefined;
  const negated = [m[1], m[2], m[5]].filter((x) => x !== undefined).length % 2 === 1;
  return { file: (m[4] ?? m[7]) as string, exists: !negated };
}

/**
 * The text of a RUN without the branches of `if [ -f FILE ]; then …; elif …; else …; fi` that
 * cannot run, given what is known of each file (`undefined`: not known, the branch may run).
 * Nested ifs and anything unusual are left as they are.
 */
export function liveBranches(text: string, known: (file: string) => boolean | undefined): string {
  const parts = text.split(/(;|\n)/);
  const out: string[] = [];
  /** per branch of the current if: true = runs for sure, false = never, undefined = may */
  let state: { taken: boolean | undefined; live: boolean } | undefined;
  for (let i = 0; i < parts.length; i++) {
    const raw = parts[i] ?? '';
    const p = raw.trim().replace(/^\\\s*/, '');
    const head = /^(if|elif)\s+(.*)$/.exec(p);
    if (head && !(head[1] === 'if' && state)) {
      const t = fileTest(head[2] ?? '');
      const k = t ? known(t.file) : undefined;
      const result = k === undefined || t === undefined ? undefined : k === t.exists;
      if (head[1] === 'if') state = { taken: result === true ? true : result === false ? false : undefined, live: result !== false };
      else if (state) {
        const before = state.taken;
        state.live = before !== true && result !== false;
        state.taken = before === true || result === true ? true : before === false && result === false ? false : undefined;
      }
      out.push(raw);
      continue;
    }
    if (state && /^else\b/.test(p)) {
      state.live = state.taken !== true;
      out.push(state.live ? raw : 'else :');
      continue;
    }
    if (state && /^fi\b/.test(p)) {
      state = undefined;
      out.push(raw);
      continue;
    }
    if (state && !state.live && raw !== ';' && raw !== '\n') {
      // a dead branch's commands go; `then` stays so that the text still reads as shell
      out.push(/^then\b/.test(p) ? 'then :' : ':');
      continue;
    }
    out.push(raw);
  }
  return out.join('');
}

/** A COPY source's last part as a pattern (`yarn.lock*`, `*.json`), matched against a file name. */
function nameMatches(pattern: string, name: string): boolean {
  const re = new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\?/g, '.')).join('.*')}$`);
  return re.test(name);
}

/**
 * Whether `file` (as a RUN at `before` in the stage tests it, relative to its WORKDIR) is there:
 * true when a COPY from the context brings it and the context has it, false when the COPYs that
 * would bring it find no such file in the context, undefined when no COPY names it (a RUN or the
 * base may make it).
 */
export function copiedFromContext(instructions: readonly Instruction[], before: Instruction, file: string, context: string): boolean | undefined {
  const dirs = runDirs(instructions);
  const abs = path.posix.resolve(dirs.get(before) ?? '/', file);
  let verdict: boolean | undefined;
  for (const i of instructions) {
    if (i === before) break;
    if ((i.kind !== 'COPY' && i.kind !== 'ADD') || i.from !== undefined || i.heredocs.length > 0) continue;
    const destDir = path.posix.resolve(dirs.get(i) ?? '/', i.dest);
    const intoDir = i.dest.endsWith('/') || i.dest === '.' || i.sources.length > 1;
    for (const src of i.sources) {
      const broad = src === '.' || src === './' || src === '/';
      let ctxPath: string | undefined;
      if (broad) {
        const rel = path.posix.relative(destDir, abs);
        if (rel !== '' && !rel.startsWith('..')) ctxPath = rel;
      } else if (intoDir && path.posix.dirname(abs) === destDir && nameMatches(path.posix.basename(src), path.posix.basename(abs))) {
        ctxPath = path.posix.join(path.posix.dirname(src), path.posix.basename(abs));
      } else if (!intoDir && destDir === abs) ctxPath = src;
      if (ctxPath === undefined || ctxPath.includes('*')) continue;
      if (existsSync(path.join(context, ctxPath))) return true;
      verdict = false;
    }
  }
  return verdict;
}
