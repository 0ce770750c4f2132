import type { BuildResult, StepRecord } from '../builder/builder.js';
import type { HistoryLine } from '../cache/records.js';
import { humanSize } from '../util/fsx.js';

/** `--report FILE.json`, version 1 (DESIGN.md section 7; fields are only ever added). */
export interface BuildReport {
  version: 1;
  image: { id: string; tags: string[] };
  durationMs: number;
  /** the build failed: steps end with the failing one (status "failed") */
  failed?: boolean;
  /** when the build finished (ISO time) */
  finished?: string;
  /** the layer steps, as the builder recorded them */
  steps: StepRecord[];
  summary: { steps: number; hits: number; misses: number; hitRatio: number; savedMs: number };
}

export function buildReport(r: Pick<BuildResult, 'steps' | 'durationMs'> & { image: { id: string; tags: string[] } }, failed = false): BuildReport {
  const hits = r.steps.filter((s) => s.cache === 'hit').length;
  const total = r.steps.length;
  return {
    version: 1,
    image: { id: r.image.id, tags: r.image.tags },
    durationMs: r.durationMs,
    ...(failed ? { failed: true } : {}),
    finished: new Date().toISOString(),
    steps: r.steps.map((s) => ({ ...s })),
    summary: {
      steps: total,
      hits,
      misses: total - hits,
      hitRatio: total === 0 ? 1 : Math.round((hits / total) * 100) / 100,
      savedMs: r.steps.reduce((n, s) => n + (s.savedMs ?? 0), 0),
    },
  };
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ').slice(0, 80);
}

/** The GitHub step summary: a short table and the hit ratio, no external links. */
export function reportMarkdown(rep: BuildReport): string {
  const lines = [
    `### lbuild: ${rep.image.tags.join(', ') || rep.image.id.slice(7, 19)}`,
    '',
    `Cache: **${rep.summary.hits}/${rep.summary.steps} steps hit (${Math.round(rep.summary.hitRatio * 100)}%)**, about ${seconds(rep.summary.savedMs)} saved; build took ${seconds(rep.durationMs)}.`,
    '',
    '| step | result | reason | time | size |',
    '| --- | --- | --- | ---: | ---: |',
    ...rep.steps.map(
      (s) =>
        `| ${cell(`[${s.stage} ${s.index}/${s.total}] ${s.instruction}`)} | ${s.status === 'failed' ? '**failed**' : s.cache === 'hit' ? 'hit' : '**miss**'} | ${cell(s.reason ?? '')} | ${seconds(s.durationMs)} | ${s.layer ? humanSize(s.layer.size) : '0B'} |`,
    ),
    '',
  ];
  return `${lines.join('\n')}\n`;
}

export function historyLine(rep: BuildReport, dockerfile: string, target: string): HistoryLine {
  return {
    time: new Date().toISOString(),
    dockerfile,
    target,
    image: rep.image.id,
    durationMs: rep.durationMs,
    steps: rep.steps.map((s) => ({
      stage: s.stage, index: s.index, line: s.line, instruction: s.instruction, cache: s.cache,
      ...(s.reason ? { reason: s.reason } : {}), durationMs: s.durationMs,
    })),
    summary: rep.summary,
  };
}

/** `lbuild cache report`: hit ratios of recent builds and the steps that miss most. */
export function cacheReportText(history: readonly HistoryLine[], last: number): string {
  const recent = history.slice(-last);
  if (recent.length === 0) return 'no builds recorded yet\n';
  const out = [`Last ${recent.length} build(s):`];
  for (const h of recent) {
    out.push(`  ${h.time}  ${String(Math.round(h.summary.hitRatio * 100)).padStart(3)}% hit  ${String(h.summary.hits).padStart(3)}/${String(h.summary.steps).padEnd(3)} ${seconds(h.durationMs).padStart(7)}  ${h.dockerfile} (${h.target})`);
  }
  const misses = new Map<string, { count: number; runs: number; ms: number; reasons: Map<string, number> }>();
  for (const h of recent) {
    for (const s of h.steps) {
      const k = `${h.dockerfile}:${s.line} ${s.instruction}`;
      const m = misses.get(k) ?? { count: 0, runs: 0, ms: 0, reasons: new Map() };
      m.runs++;
      if (s.cache === 'miss') {
        m.count++;
        m.ms += s.durationMs;
        if (s.reason) m.reasons.set(s.reason, (m.reasons.get(s.reason) ?? 0) + 1);
      }
      misses.set(k, m);
    }
  }
  const top = [...misses].filter(([, m]) => m.count > 0).sort((a, b) => b[1].count - a[1].count || b[1].ms - a[1].ms).slice(0, 10);
  if (top.length) {
    out.push('', 'Steps that miss most:');
    for (const [k, m] of top) {
      const reason = [...m.reasons].sort((a, b) => b[1] - a[1])[0]?.[0];
      out.push(`  missed ${m.count} of ${m.runs}  ${seconds(m.ms).padStart(7)} re-run  ${k}${reason ? `  (mostly: ${reason})` : ''}`);
    }
  }
  return `${out.join('\n')}\n`;
}
