import type { BuildResult, StepRecord } from '../builder/builder.js';
import type { HistoryLine } from '../cache/records.js';
import { humanSize } from '../util/fsx.js';

/** `--report FILE.json`, version 1 (DESIGN.md section 7; fields are only ever added). */
export interface BuildReport {
  version: 1;
  /** id: the config digest (the image ID); manifestDigest: of the store's manifest */
  image: { id: string; tags: string[]; manifestDigest?: string };
  durationMs: number;
  /** the build failed: steps end with the failing one (status "failed") */
  failed?: boolean;
  /** why it failed, in full (the one-line error lbuild printed) */
  error?: string;
  /** the Dockerfile built (its path; `<stdin>` for one read from standard input) */
  dockerfile?: string;
  target?: string;
  /** --build-arg values given (secrets never are build args) */
  buildArgs?: Record<string, string>;
  /** what --push / -o type=image,push=true pushed: name and manifest digest */
  pushed?: { name: string; digest: string }[];
  /** when the build finished (ISO time) */
  finished?: string;
  /** the layer steps, as the builder recorded them */
  steps: StepRecord[];
  summary: { steps: number; hits: number; misses: number; hitRatio: number; savedMs: number };
}

/** What the report says about the build beside its steps. */
export interface ReportContext {
  failed?: boolean;
  error?: string;
  dockerfile?: string;
  target?: string;
  buildArgs?: ReadonlyMap<string, string>;
  pushed?: readonly { name: string; digest: string }[];
}

export function buildReport(r: Pick<BuildResult, 'steps' | 'durationMs'> & { image: { id: string; tags: string[]; manifestDigest?: string } }, ctx: ReportContext = {}): BuildReport {
  const hits = r.steps.filter((s) => s.cache === 'hit').length;
  const total = r.steps.length;
  return {
    version: 1,
    image: { id: r.image.id, tags: r.image.tags, ...(r.image.manifestDigest ? { manifestDigest: r.image.manifestDigest } : {}) },
    durationMs: r.durationMs,
    ...(ctx.failed ? { failed: true } : {}),
    ...(ctx.error ? { error: ctx.error } : {}),
    ...(ctx.dockerfile ? { dockerfile: ctx.dockerfile } : {}),
    ...(ctx.target ? { target: ctx.target } : {}),
    ...(ctx.buildArgs ? { buildArgs: Object.fromEntries(ctx.buildArgs) } : {}),
    ...(ctx.pushed?.length ? { pushed: ctx.pushed.map((p) => ({ ...p })) } : {}),
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

function cell(s: string, max = 160): string {
  const one = s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

/** The GitHub step summary: a short table and the hit ratio, no external links. */
export function reportMarkdown(rep: BuildReport): string {
  const name = rep.image.tags.join(', ') || (rep.image.id ? rep.image.id.slice(7, 19) : '') || rep.dockerfile || 'build';
  const failedStep = rep.steps.find((s) => s.status === 'failed');
  const lines = [
    `### lbuild: ${name}${rep.failed ? ' — build failed' : ''}`,
    '',
    // the cause in full: a CI reader should not have to open the log to see why
    ...(rep.failed ? [`**Failed**${failedStep ? ` at line ${failedStep.line} (\`${cell(failedStep.instruction, 120)}\`)` : ''}: ${(rep.error ?? 'see the build log').replace(/\n/g, ' ')}`, ''] : []),
    ...(rep.pushed?.length ? [`Pushed: ${rep.pushed.map((p) => `\`${p.name}@${p.digest}\``).join(', ')}`, ''] : []),
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

/** A step of recent builds that missed, with how often and mostly why. */
export interface MissingStep {
  dockerfile: string;
  line: number;
  instruction: string;
  missed: number;
  runs: number;
  rerunMs: number;
  reason?: string;
}

/** The steps of recent builds that miss most (at most ten), most often first. */
function mostMissed(recent: readonly HistoryLine[]): MissingStep[] {
  const misses = new Map<string, MissingStep & { reasons: Map<string, number> }>();
  for (const h of recent) {
    for (const s of h.steps) {
      const k = `${h.dockerfile}:${s.line} ${s.instruction}`;
      const m = misses.get(k) ?? { dockerfile: h.dockerfile, line: s.line, instruction: s.instruction, missed: 0, runs: 0, rerunMs: 0, reasons: new Map() };
      m.runs++;
      if (s.cache === 'miss') {
        m.missed++;
        m.rerunMs += s.durationMs;
        if (s.reason) m.reasons.set(s.reason, (m.reasons.get(s.reason) ?? 0) + 1);
      }
      misses.set(k, m);
    }
  }
  return [...misses.values()]
    .filter((m) => m.missed > 0)
    .sort((a, b) => b.missed - a.missed || b.rerunMs - a.rerunMs)
    .slice(0, 10)
    .map(({ reasons, ...m }) => {
      const reason = [...reasons].sort((a, b) => b[1] - a[1])[0]?.[0];
      return reason ? { ...m, reason } : m;
    });
}

/** `lbuild cache report --format json`: the same facts as the text, as data. */
export function cacheReportJson(history: readonly HistoryLine[], last: number): { builds: Omit<HistoryLine, 'steps'>[]; mostMissed: MissingStep[] } {
  const recent = history.slice(-last);
  return {
    builds: recent.map((h) => ({ time: h.time, dockerfile: h.dockerfile, target: h.target, image: h.image, durationMs: h.durationMs, summary: h.summary })),
    mostMissed: mostMissed(recent),
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
  const top = mostMissed(recent);
  if (top.length) {
    out.push('', 'Steps that miss most:');
    for (const m of top) {
      out.push(`  missed ${m.missed} of ${m.runs}  ${seconds(m.rerunMs).padStart(7)} re-run  ${m.dockerfile}:${m.line} ${m.instruction}${m.reason ? `  (mostly: ${m.reason})` : ''}`);
    }
  }
  return `${out.join('\n')}\n`;
}
