import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { HistoryLine } from '../cache/records.js';
import type { Instruction, ParsedDockerfile } from '../dockerfile/instructions.js';
import { UsageError } from '../errors.js';
import { RULES } from './rules/index.js';
import { type BaseFacts, type Finding, type LintContext, type LintStage, SEVERITY_RANK, type Severity } from './types.js';

export const HISTORY_RULE = { id: 'LB100', severity: 'info' as Severity, title: 'A step that misses the cache in most recent builds re-runs the steps after it' };

/** A stage named by `FROM x`, `COPY --from=x` or `--mount=from=x`: by name or by index. */
function stageNamed(stages: readonly LintStage[], ref: string | undefined, before: number): LintStage | undefined {
  if (ref === undefined) return undefined;
  const r = ref.toLowerCase();
  if (/^\d+$/.test(r)) return Number(r) < before ? stages[Number(r)] : undefined;
  return stages.slice(0, before).find((s) => s.name?.toLowerCase() === r);
}

/** The stages a stage builds on (FROM) and takes files from (COPY --from, RUN --mount from=). */
function dependencies(stages: readonly LintStage[], st: LintStage): { base?: LintStage; others: LintStage[] } {
  const base = stageNamed(stages, st.from.kind === 'FROM' ? st.from.image : undefined, st.index);
  const others: LintStage[] = [];
  for (const i of st.instructions) {
    const refs = i.kind === 'COPY' || i.kind === 'ADD' ? [i.from] : i.kind === 'RUN' ? i.mounts.map((m) => m.options.from) : [];
    for (const r of refs) {
      const d = stageNamed(stages, r, st.index);
      if (d) others.push(d);
    }
  }
  return { ...(base ? { base } : {}), others };
}

/** The target's FROM chain (its layers are the image's), and every stage its build runs. */
function reach(stages: readonly LintStage[], target: LintStage): { shipped: Set<LintStage>; used: Set<LintStage> } {
  const shipped = new Set<LintStage>();
  for (let s: LintStage | undefined = target; s && !shipped.has(s); s = dependencies(stages, s).base) shipped.add(s);
  const used = new Set<LintStage>();
  const visit = (s: LintStage): void => {
    if (used.has(s)) return;
    used.add(s);
    const d = dependencies(stages, s);
    if (d.base) visit(d.base);
    d.others.forEach(visit);
  };
  visit(target);
  return { shipped, used };
}

/** The image a stage's FROM chain starts from (not a stage), lower-cased as the store keys it. */
export function rootImage(stages: readonly LintStage[], st: LintStage): string | undefined {
  const seen = new Set<LintStage>();
  let s: LintStage | undefined = st;
  while (s && !seen.has(s)) {
    seen.add(s);
    const base: LintStage | undefined = dependencies(stages, s).base;
    if (!base) return s.from.kind === 'FROM' ? s.from.image : undefined;
    s = base;
  }
  return undefined;
}

export interface LintOptions {
  /** build records, for LB100 */
  history?: readonly HistoryLine[];
  /** the Dockerfile's absolute path, as the build records name it */
  dockerfilePath?: string;
  /** rule ids turned off (e.g. from .hadolint.yaml) */
  ignored?: readonly string[];
  /** the stage to judge as the image (default: the last) */
  target?: string;
  /** the build context directory */
  context?: string;
  /** facts about base images, by the FROM reference */
  bases?: ReadonlyMap<string, BaseFacts>;
}

export function stagesOf(df: ParsedDockerfile): LintStage[] {
  const out: LintStage[] = [];
  for (const i of df.instructions) {
    if (i.kind === 'FROM') out.push({ index: out.length, ...(i.stageName ? { name: i.stageName } : {}), from: i, instructions: [] });
    else out[out.length - 1]?.instructions.push(i);
  }
  return out;
}

/**
 * hadolint's checks that are the same check as an lbuild rule: `# hadolint ignore=DL3020` (and a
 * .hadolint.yaml `ignored:` list) silence the lbuild rule too, so a Dockerfile need not say it twice.
 */
export const HADOLINT_SAME: Readonly<Record<string, string>> = {
  DL3020: 'LB006', // use COPY instead of ADD
  DL3006: 'LB007', // tag the image version explicitly
  DL3007: 'LB007', // do not use latest
  DL3009: 'LB004', // delete the apt lists after installing
  DL3019: 'LB004', // apk add --no-cache
  DL3042: 'LB004', // pip install --no-cache-dir
  DL3060: 'LB004', // yarn cache clean
  DL3059: 'LB005', // consecutive RUNs: consolidate
};

/** Rule ids as written (LBxxx, or a hadolint DLxxxx standing for one), upper-cased. */
export function ruleIds(list: string): string[] {
  return list
    .split(',')
    .map((r) => r.trim().toUpperCase())
    .filter((r) => r !== '')
    .map((r) => HADOLINT_SAME[r] ?? r);
}

/** `# lbuild ignore=A,B` / `# hadolint ignore=DLxxxx` on the line above an instruction; `# lbuild global ignore=A`. */
function pragmas(source: string): { global: Set<string>; byLine: Map<number, Set<string>> } {
  const global = new Set<string>();
  const byLine = new Map<number, Set<string>>();
  source.split(/\r?\n/).forEach((l, idx) => {
    const g = /^\s*#\s*(?:lbuild|hadolint)\s+global\s+ignore\s*=\s*([\w,\s-]+)$/i.exec(l);
    if (g) for (const r of ruleIds(g[1] ?? '')) global.add(r);
    const m = /^\s*#\s*(?:lbuild|hadolint)\s+ignore\s*=\s*([\w,\s-]+)$/i.exec(l);
    // applies to the instruction on the next line (1-based line idx + 2)
    if (m) byLine.set(idx + 2, new Set(ruleIds(m[1] ?? '')));
  });
  return { global, byLine };
}

/** The `ignored:` list of a .hadolint.yaml (a YAML list of ids; the rest of the file is hadolint's). */
export function hadolintIgnored(yaml: string): string[] {
  const out: string[] = [];
  let inList = false;
  for (const line of yaml.split(/\r?\n/)) {
    const inline = /^ignored\s*:\s*\[(.*)\]\s*$/.exec(line);
    if (inline) {
      out.push(...ruleIds((inline[1] ?? '').replace(/["']/g, '')));
      continue;
    }
    if (/^ignored\s*:\s*$/.test(line)) {
      inList = true;
      continue;
    }
    if (inList) {
      const item = /^\s+-\s*["']?([\w-]+)["']?\s*(#.*)?$/.exec(line);
      if (item) out.push(...ruleIds(item[1] ?? ''));
      else if (line.trim() !== '' && !line.trim().startsWith('#')) inList = false;
    }
  }
  return out;
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

export function lint(df: ParsedDockerfile, source: string, opts: LintOptions = {}): Finding[] {
  const stages = stagesOf(df);
  const target = opts.target === undefined ? stages[stages.length - 1] : stageNamed(stages, opts.target, stages.length);
  if (opts.target !== undefined && !target) throw new UsageError(`--target ${opts.target}: no such stage`);
  const { shipped, used } = target ? reach(stages, target) : { shipped: new Set<LintStage>(), used: new Set<LintStage>() };
  const ctx: LintContext = {
    dockerfile: df,
    stages,
    stageNames: new Set(stages.map((s) => s.name).filter((n): n is string => n !== undefined)),
    shipped,
    used,
    ...(opts.context !== undefined ? { context: opts.context } : {}),
    baseOf: (st) => {
      const ref = rootImage(stages, st);
      return ref === undefined ? undefined : opts.bases?.get(ref);
    },
  };
  const { global, byLine } = pragmas(source);
  for (const id of opts.ignored ?? []) global.add(id);
  const stageAt = (line: number): LintStage | undefined => [...stages].reverse().find((s) => s.from.line <= line);
  const findings: Finding[] = [];
  for (const rule of RULES) {
    if (global.has(rule.id)) continue;
    for (const hit of rule.check(ctx)) {
      const st = stageAt(hit.line);
      // a build-time finding in a stage the target never builds costs nothing for this target
      const unused = st && !used.has(st) ? ` (in stage ${st.name ?? st.index}, which building ${target?.name ? `the target ${target.name}` : 'the image'} does not use)` : '';
      findings.push({ rule: rule.id, severity: rule.severity, ...hit, message: hit.message + unused });
    }
  }
  if (!global.has(HISTORY_RULE.id)) findings.push(...historyHints(opts.history ?? [], opts.dockerfilePath ?? '', df.instructions));
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
