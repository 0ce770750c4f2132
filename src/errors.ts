/** Errors a user can act on. The CLI prints `message` as one line and exits with `exitCode`. */
export class LbuildError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = 'LbuildError';
    this.exitCode = exitCode;
  }
}

/** Bad command-line usage (exit 2). */
export class UsageError extends LbuildError {
  constructor(message: string) {
    super(message, 2);
    this.name = 'UsageError';
  }
}

/** A blob or archive whose bytes do not match the digest it claims. */
export class DigestMismatchError extends LbuildError {
  constructor(what: string, expected: string, actual: string) {
    super(`${what}: digest mismatch (expected ${expected}, got ${actual})`);
    this.name = 'DigestMismatchError';
  }
}

/** A path (in a tar, a Dockerfile or a context) that would leave its root. */
export class PathEscapeError extends LbuildError {
  constructor(path: string, why: string) {
    super(`refusing path ${JSON.stringify(path)}: ${why}`);
    this.name = 'PathEscapeError';
  }
}

/** An image name or ID that the store does not know. */
export class NotFoundError extends LbuildError {
  constructor(what: string) {
    super(`${what}: not found`);
    this.name = 'NotFoundError';
  }
}

export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

export function isErrno(e: unknown, code: string): boolean {
  return typeof e === 'object' && e !== null && (e as NodeJS.ErrnoException).code === code;
}
