/**
 * Error classes of fp4lm. Every error says what was wrong and what to do about it; callers
 * tell them apart by class (the CLI prints `message` without a stack trace for these).
 * Not for programming errors (those stay plain `Error` and keep their stack).
 */

/** Base class: an error the user can act on (bad input, bad option, bad file). */
export class Fp4lmError extends Error {
  override name = "Fp4lmError";
}

/** A tensor's shape breaks a format's rule (e.g. NVFP4 needs cols % 16 == 0). */
export class ShapeError extends Fp4lmError {
  override name = "ShapeError";
}

/** A tensor holds NaN or Inf where finite values are required. */
export class NonFiniteError extends Fp4lmError {
  override name = "NonFiniteError";
  constructor(
    message: string,
    /** flat index of the first non-finite element */
    readonly index: number,
  ) {
    super(message);
  }
}

/** A file (safetensors, npy, checkpoint, config) is truncated, malformed or unsupported. */
export class FileFormatError extends Fp4lmError {
  override name = "FileFormatError";
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}

/** A command-line usage error: unknown flag, missing argument. */
export class UsageError extends Fp4lmError {
  override name = "UsageError";
}
