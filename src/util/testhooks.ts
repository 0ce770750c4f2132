/**
 * A pause the tests can widen (`LBUILD_TEST_<NAME>_MS`) to hold a race window open: between
 * keying a COPY and copying, or inside garbage collection. Zero, and so nothing, in real use.
 */
export async function pauseForTests(name: string): Promise<void> {
  const ms = Number(process.env[`LBUILD_TEST_${name}_MS`] ?? 0);
  if (ms > 0) await new Promise((r) => setTimeout(r, ms));
}
