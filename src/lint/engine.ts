import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { HistoryLine } from '../cache/records.js';
import type { Instruction, ParsedDockerfile } from '../dockerfile/instructions.js';
import { RULES } from './rules/index.js';
import { type Finding, type LintContext, type LintStage, SEVERITY_RANK, type Severity } from './types.js';

export const HISTORY_RULE = { id: 'LB100', severity: 'info' as Severity, title: 'A step that misses the cache in most recent builds re-runs the steps after it' };

function stagesOf(df: ParsedDockerfile): LintStage[] {
  const out: LintStage[] = [];
  for (const i of df.instructions) {
    if (i.kind === 'FROM') out.push({ index: out.length, ...(i.stageName ? { name: i.stageName } : {}), from: i, instructions: [] });
    else out[out.length - 1]?.instructions.push(i);
  }
  return out;
}

/** `# lbuild ignore=A,B` on the line above an instruction; `# lbuild global ignore=A`. */
function pragmas(source: string): { global: Set<string>; byLine: Map<number, Set<string>> } {
  const global = new Set<string>();
  const byLine = new Map<number, Set<string>>();
  source.split(/\r?\n/).forEach((l, idx) => {
    const g = /^\s*#\s*lbuild\s+global\s+ignore\s*=\s*([\w,\s-]+)$/i.exec(l);
    if (g) for (const r of (g[1] ?? '').split(',')) global.add(r.trim().toUpperCase());
    const m = /^\s*#\s*lbuild\s+ignore\s*=\s*([\w,\s-]+)$/i.exec(l);
    // applies to the instruction on the next line (1-based line idx + 2)
    if (m) byLine.set(idx + 2, new Set((m[1] ?? '').split(',').map((r) => r.trim().toUpperCase())));
  });
  return { global, byLine };
}

/** Hints from build records: steps that missed in most of the recent builds of this Dockerfile. */
export function historyHints(history: readonly HistoryLine[], dockerfile: string, instructions: readonly Instruction[]): Finding[] {
  const builds = history.filter((h) => h.dockerfile === dockerfile).slice(-10);
  if (builds.length < 3) return [];
  const stats = new Map<number, { instruction: string; missed: number; rerunMs: number }>();
  for (const b of builds) {
    b.steps.forEach((s, k) => {
      if (s.cache !== 'miss') return;
      const cur = stats.get(s.line) ?? { instruction: s.instruction, missed: 0, rerunMs: 0 };
      cur.missed++;
      cur.rerunMs += b.steps.slice(k + 1).filter((x) => x.cache === 'miss').reduce((a, x) => a + x.durationMs, 0);
      stats.set(s.line, cur);
    });
  }
  const out: Finding[] = [];
  for (const [line, st] of stats) {
    if (st.missed * 2 <= builds.length || st.rerunMs < 1000) continue;
    if (!instructions.some((i) => i.line === line && i.text === st.instruction)) continue; // the file changed since
    out.push({
      rule: HISTORY_RULE.id,
      severity: HISTORY_RULE.severity,
      line,
      column: 1,
      message: `${st.instruction} missed the cache in ${st.missed} of the last ${builds.length} builds and re-ran ${(st.rerunMs / 1000).toFixed(0)} s of later steps`,
      fix: 'move it below the expensive steps, or narrow what it depends on',
    });
  }
  return out;
}

export function lint(df: ParsedDockerfile, source: string, history: readonly HistoryLine[] = [], dockerfilePath = ''): Finding[] {
  const stages = stagesOf(df);
  const ctx: LintContext = { dockerfile: df, stages, stageNames: new Set(stages.map((s) => s.name).filter((n): n is string => n !== undefined)) };
  const { global, byLine } = pragmas(source);
  const findings: Finding[] = [];
  for (const rule of RULES) {
    if (global.has(rule.id)) continue;
    for (const hit of rule.check(ctx)) findings.push({ rule: rule.id, severity: rule.severity, ...hit });
  }
  if (!global.has(HISTORY_RULE.id)) findings.push(...historyHints(history, dockerfilePath, df.instructions));
  return findings.filter((f) => !byLine.get(f.line)?.has(f.rule)).sort((a, b) => a.line - b.line || (a.rule < b.rule ? -1 : 1));
}

export function failsThreshold(findings: readonly Finding[], threshold: Severity | 'none'): boolean {
  return findings.some((f) => SEVERITY_RANK[f.severity] >= SEVERITY_RANK[threshold]);
}

export function lintText(file: string, findings: readonly Finding[]): string {
  if (findings.length === 0) return `${file}: no findings\n`;
  return `${findings.map((f) => `${file}:${f.line} ${f.rule} ${f.severity}: ${f.message}\n    fix: ${f.fix}`).join('\n')}\n`;
}

/**
 * Where SARIF says the Dockerfile is: relative to the directory lint ran in (`%SRCROOT%`, which
 * code scanning maps onto the repository), or a file:// URI for one outside it.
 */
function artifactLocation(file: string, cwd: string): { uri: string; uriBaseId?: string } {
  const abs = path.resolve(cwd, file);
  const rel = path.relative(cwd, abs);
  if (rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel)) return { uri: rel.split(path.sep).map(encodeURIComponent).join('/'), uriBaseId: '%SRCROOT%' };
  return { uri: pathToFileURL(abs).href };
}

/** SARIF 2.1.0: one run, the rules in tool.driver.rules, results with physical locations. */
export function lintSarif(file: string, findings: readonly Finding[], cwd = process.cwd()): unknown {
  const rules = [...RULES.map((r) => ({ id: r.id, severity: r.severity, title: r.title })), HISTORY_RULE];
  const level = (s: Severity): string => (s === 'info' ? 'note' : s);
  return {
    version: '2.1.0',
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    runs: [
      {
        tool: {
          driver: {
            // no informationUri: lbuild has no published page to point at, and a placeholder misleads
            name: 'lbuild lint',
            rules: rules.map((r) => ({ id: r.id, shortDescription: { text: r.title }, defaultConfiguration: { level: level(r.severity) } })),
          },
        },
        results: findings.map((f) => ({
          ruleId: f.rule,
          ruleIndex: rules.findIndex((r) => r.id === f.rule),
          level: level(f.severity),
          message: { text: `${f.message} (fix: ${f.fix})` },
          locations: [{ physicalLocation: { artifactLocation: artifactLocation(file, cwd), region: { startLine: f.line, startColumn: f.column } } }],
        })),
      },
    ],
  };
}
