import * as http from 'node:http';
import { PassThrough } from 'node:stream';
import { LbuildError } from '../errors.js';

/*
 * A client of the Docker Engine API for one call: POST /images/load, the endpoint `docker load`
 * uses. The socket is DOCKER_HOST's (unix:// only) or /var/run/docker.sock.
 */

export function dockerSocket(env: NodeJS.ProcessEnv = process.env): string {
  const host = env.DOCKER_HOST;
  if (!host) return '/var/run/docker.sock';
  if (!host.startsWith('unix://')) throw new LbuildError(`--load: DOCKER_HOST=${host}: only a unix:// socket is supported`);
  return host.slice('unix://'.length);
}

/**
 * Stream a docker-archive into dockerd. `write` fills the request body; the daemon's answer is
 * a JSON message stream whose `error` (or a non-2xx status) fails the load.
 */
export async function loadIntoDocker(socketPath: string, write: (body: PassThrough) => Promise<void>): Promise<string[]> {
  const body = new PassThrough();
  const answer = new Promise<string[]>((resolve, reject) => {
    const req = http.request(
      { socketPath, path: '/images/load?quiet=1', method: 'POST', headers: { 'Content-Type': 'application/x-tar', 'Transfer-Encoding': 'chunked' } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => { text += d; });
        res.on('end', () => {
          const messages: string[] = [];
          let error: string | undefined;
          for (const line of text.split(/\r?\n/)) {
            if (!line.trim()) continue;
            try {
              const m = JSON.parse(line) as { stream?: string; error?: string; message?: string };
              if (m.error) error = m.error;
              else if (m.stream?.trim()) messages.push(m.stream.trim());
              else if (m.message) error = m.message;
            } catch {
              messages.push(line.trim());
            }
          }
          if ((res.statusCode ?? 500) >= 300 || error) reject(new LbuildError(`--load: dockerd refused the image: ${error ?? `HTTP ${res.statusCode}`}`));
          else resolve(messages);
        });
        res.on('error', reject);
      },
    );
    req.on('error', (e: NodeJS.ErrnoException) => {
      reject(new LbuildError(`--load: cannot reach dockerd at ${socketPath} (${e.code ?? e.message}); is it running? (DOCKER_HOST=unix://PATH for another socket)`));
    });
    body.pipe(req);
  });
  // whichever fails first (the daemon, or writing the archive) is the error
  const written = write(body).catch((e: unknown) => {
    body.destroy(e as Error);
    throw e;
  });
  const [messages] = await Promise.all([answer, written]);
  return messages;
}
