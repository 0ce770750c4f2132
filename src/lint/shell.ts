import * as path from 'node:path';
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

const INSTALLERS: [RegExp, string][] = [
  [/\b(npm)\s+(install|ci|i)\b/, 'package.json (and package-lock.json)'],
  [/\byarn(\s+install)?\s*($|--|&&)/, 'package.json and yarn.lock'],
  [/\bpnpm\s+(install|i)\b/, 'package.json and pnpm-lock.yaml'],
  [/\bpip3?\s+install\b.*\s-r\s/, 'requirements.txt'],
  [/\bbundle\s+install\b/, 'Gemfile and Gemfile.lock'],
  [/\bgo\s+mod\s+download\b/, 'go.mod and go.sum'],
  [/\bcargo\s+(build|fetch)\b/, 'Cargo.toml and Cargo.lock'],
  [/\bmvn\b.*\bdependency:(go-offline|resolve)\b/, 'pom.xml'],
  [/\bgradle(w)?\b.*\b(dependencies|build)\b|\.\/gradlew\b/, 'build.gradle and settings.gradle'],
  [/\bcomposer\s+install\b/, 'composer.json and composer.lock'],
];

/** The manifest files to copy first when a RUN installs dependencies, or undefined. */
export function dependencyInstall(text: string): string | undefined {
  for (const [re, files] of INSTALLERS) if (re.test(text)) return files;
  return undefined;
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

/** The working directory each RUN of a stage runs in (WORKDIR instructions applied; `/` at first). */
export function runDirs(instructions: readonly Instruction[]): Map<RunInstr, string> {
  const out = new Map<RunInstr, string>();
  let cwd = '/';
  for (const i of instructions) {
    if (i.kind === 'WORKDIR') cwd = path.posix.resolve(cwd, i.path);
    else if (i.kind === 'RUN') out.set(i, cwd);
  }
  return out;
}
