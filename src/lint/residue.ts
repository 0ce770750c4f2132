import { commands } from './shell.js';

/*
 * What a RUN leaves behind that a later cleanup could target (package lists, package caches,
 * installed packages), and what a RUN cleans. Rules compare the two across a stage: a cleanup
 * saves bytes only in the RUN that made them. (Paths written and deleted later are LB002's.)
 */

/** A kind of leftover: `apt-lists`, `apt-archives`, `pkg:NAME` (an installed package), `npm-cache`, … */
export type Residue = string;

/** The words after a package manager's verb that name packages (options dropped; `$VAR` kept as a name). */
function packageArgs(rest: string): string[] {
  return rest
    .trim()
    .split(/\s+/)
    .filter((w) => w !== '' && !w.startsWith('-') && !w.includes('=') && w !== '\\' && !/^[<>|&;]/.test(w))
    .map((w) => w.replace(/^["']|["']$/g, ''));
}

const APT = String.raw`\b(?:apt-get|apt|aptitude)\s+(?:-\S+\s+)*`;
const RPM = String.raw`\b(?:dnf|yum|microdnf)\s+(?:-\S+\s+)*`;

/** What one RUN's command text creates. */
export function created(text: string): Set<Residue> {
  const out = new Set<Residue>();
  for (const c of commands(text)) {
    if (new RegExp(`${APT}update\\b`).test(c)) out.add('apt-lists');
    const apt = new RegExp(`${APT}(?:install|upgrade|dist-upgrade|full-upgrade)\\b(.*)`).exec(c);
    if (apt) {
      out.add('apt-archives');
      for (const p of packageArgs(apt[1] ?? '')) out.add(`pkg:${p}`);
      out.add('pkg:*');
    }
    const apk = /\bapk\s+(?:-\S+\s+)*add\b(.*)/.exec(c);
    if (apk) {
      if (!/--no-cache\b/.test(c)) out.add('apk-cache');
      for (const p of packageArgs(apk[1] ?? '')) out.add(`pkg:${p}`);
      out.add('pkg:*');
    }
    if (/\bapk\s+update\b/.test(c)) out.add('apk-cache');
    const rpm = new RegExp(`${RPM}install\\b(.*)`).exec(c);
    if (rpm) {
      out.add('rpm-cache');
      for (const p of packageArgs(rpm[1] ?? '')) out.add(`pkg:${p}`);
      out.add('pkg:*');
    }
    if (/\bpip3?\s+install\b/.test(c) && !/--no-cache-dir\b/.test(c)) out.add('pip-cache');
    if (/\bnpm\s+(?:install|ci|i)\b/.test(c)) out.add('npm-cache');
    if (/\byarn(\s+install)?\s*($|--)/.test(c)) out.add('yarn-cache');
  }
  return out;
}

/** What one RUN's command text cleans up. */
export function cleaned(text: string): Set<Residue> {
  const out = new Set<Residue>();
  for (const c of commands(text)) {
    const rm = /^rm\s+(.*)$/.exec(c);
    if (rm) {
      const args = rm[1] ?? '';
      if (/\/var\/lib\/apt\/lists/.test(args)) out.add('apt-lists');
      if (/\/var\/cache\/apt/.test(args)) out.add('apt-archives');
      if (/\/var\/cache\/apk/.test(args)) out.add('apk-cache');
      if (/\/var\/cache\/(?:yum|dnf)/.test(args)) out.add('rpm-cache');
      if (/\/root\/\.cache\b/.test(args)) out.add('pip-cache');
      if (/\/root\/\.npm\b/.test(args)) out.add('npm-cache');
    }
    if (new RegExp(`${APT}(?:clean|autoclean)\\b`).test(c)) out.add('apt-archives');
    const purge = new RegExp(`${APT}(?:purge|remove|autoremove)\\b(.*)`).exec(c) ?? /\bapk\s+del\b(.*)/.exec(c) ?? new RegExp(`${RPM}(?:remove|erase|autoremove)\\b(.*)`).exec(c);
    if (purge) {
      const names = packageArgs(purge[1] ?? '');
      for (const p of names) out.add(`pkg:${p}`);
      // autoremove (or --auto-remove) takes what installs pulled in: any installed package
      if (names.length === 0 || /autoremove|--auto-remove/.test(c)) out.add('pkg:*');
    }
    if (new RegExp(`${RPM}clean\\b`).test(c)) out.add('rpm-cache');
    if (/\bnpm\s+cache\s+clean\b/.test(c)) out.add('npm-cache');
    if (/\byarn\s+cache\s+clean\b/.test(c)) out.add('yarn-cache');
    if (/\bpip3?\s+cache\s+purge\b/.test(c)) out.add('pip-cache');
  }
  return out;
}

/** How a message names a residue. */
export function describeResidue(r: Residue): string {
  if (r === 'pkg:*') return 'packages';
  if (r.startsWith('pkg:')) return r.slice(4);
  return (
    {
      'apt-lists': 'the apt lists',
      'apt-archives': 'the downloaded .deb files',
      'apk-cache': 'the apk cache',
      'rpm-cache': 'the dnf/yum cache',
      'pip-cache': 'the pip cache',
      'npm-cache': 'the npm cache',
      'yarn-cache': 'the yarn cache',
    } as Record<string, string>
  )[r] ?? r;
}
