/** Errors a user can act on. The CLI prints `message` as one line and exits with `exitCode`. */
export class LbuildError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = 'LbuildError';
    this.exitCode = exitCode;
  }
}

/** An error whose message already names the file (and line) it is about: no step prefix is added. */
export class LocatedError extends LbuildError {
  constructor(message: string, exitCode = 1) {
    super(message, exitCode);
    this.name = 'LocatedError';
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

/** A digest from outside that is not `sha256:<64 hex>` (it could otherwise name a path). */
export class InvalidDigestError extends LbuildError {
  constructor(what: string, value: unknown) {
    const shown = typeof value === 'string' ? JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value) : String(value);
    super(`${what}: invalid digest ${shown} (expected sha256: and 64 hex digits)`);
    this.name = 'InvalidDigestError';
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
