import type { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';

export type TarEntry = tar.Extract extends AsyncIterable<infer S> ? S : never;

/** Why an entry was ended early (the chain's error), for whoever reads it afterwards. */
const endedBy = new WeakMap<TarEntry, Error>();

/**
 * Copy an entry's bytes into what `open` makes (only made when the entry can still be read). An entry the chain already ended (its error came while the
 * reader was busy with something else) would never finish a pipeline: that is an error now.
 */
export async function pipeEntry(entry: TarEntry, open: () => NodeJS.WritableStream): Promise<void> {
  const early = endedBy.get(entry);
  if (early || (entry as unknown as { destroyed?: boolean }).destroyed) throw early ?? new Error('the archive ended inside this entry');
  await pipeline(entry as unknown as NodeJS.ReadableStream, open());
}

/**
 * The entries of a tar stream (through optional transforms). An error anywhere in the chain
 * (a truncated archive, a failed decompressor) also ends the entry being read: tar-stream
 * otherwise leaves that entry's stream open forever, the reader waits on it, and Node exits with
 * nothing left to run, as if all had gone well. The error then surfaces here.
 */
export async function* tarEntries(src: Readable, ...through: Transform[]): AsyncGenerator<TarEntry> {
  const extract = tar.extract();
  let current: TarEntry | undefined;
  const chain = pipeline as unknown as (...streams: NodeJS.ReadableStream[]) => Promise<void>;
  const feeding = chain(src, ...through, extract as unknown as NodeJS.ReadableStream);
  feeding.catch((e: unknown) => {
    if (!current) return;
    const err = e instanceof Error ? e : new Error(String(e));
    endedBy.set(current, err);
    current.destroy(err);
  });
  try {
    for await (const entry of extract) {
      current = entry;
      yield entry;
      current = undefined;
    }
    await feeding;
  } finally {
    if (current) current.resume();
    extract.destroy();
    await feeding.catch(() => undefined);
  }
}
