const enabled = process.env.LBUILD_TRACE === '1';

/**
 * Time a phase and print `trace: <what> <ms>` on stderr when LBUILD_TRACE=1: how the
 * benchmarks tell where a step's time goes without a profiler. Costs nothing when off (the
 * global performance loads perf_hooks only when first touched).
 */
export async function traced<T>(what: string, fn: () => Promise<T>): Promise<T> {
  if (!enabled) return fn();
  const start = performance.now();
  try {
    return await fn();
  } finally {
    const mb = (n: number): string => `${Math.round(n / 1048576)}`;
    const m = process.memoryUsage();
    // `ends at`: since the process started (performance.now() counts from then), where the phases leave gaps
    const end = performance.now();
    process.stderr.write(`trace: ${what} ${(end - start).toFixed(1)} ms (ends at ${end.toFixed(0)} ms; rss ${mb(m.rss)} MB, heap ${mb(m.heapUsed)} MB)\n`);
  }
}
