/**
 * Errors of the library, each with a stable code a program can test. Exit codes are not decided here: the CLI
 * (src/cli/exit-codes.ts) maps codes to them.
 */
export type ErrorCode =
  /** A caller's option is unusable (the CLI reports it as a usage error). */
  | 'INVALID_OPTION'
  /** A manifest cannot be read, or its structure is not the one the tool writes. */
  | 'MANIFEST_INVALID'
  /** A manifest's signature does not verify with the given certificate. */
  | 'SIGNATURE_MISMATCH'
  /** A part's SHA-1 differs from the manifest's, or a part is longer than the manifest allows. */
  | 'PART_DIGEST_MISMATCH'
  /** The unbundled tar stream's SHA-1 differs from the manifest's. */
  | 'IMAGE_DIGEST_MISMATCH'
  /** The tar stream inside a bundle is malformed or exceeds what the manifest allows. */
  | 'TAR_INVALID'
  /** A name from an input is not a plain file name, or a path would leave the destination. */
  | 'UNSAFE_NAME'
  /** A key or certificate cannot be loaded, or does not fit. */
  | 'KEY_INVALID'
  /** The bundle does not decrypt or decompress. */
  | 'DECRYPT_FAILED'
  /** A file cannot be read or written. */
  | 'IO_ERROR'
  /** A block device given as the output is mounted or otherwise in use, or smaller than the image. */
  | 'DEVICE_UNUSABLE'
  /** An S3 request failed; the S3_* codes say why. */
  | 'S3_ERROR'
  | 'S3_ACCESS_DENIED'
  | 'S3_NO_SUCH_BUCKET'
  | 'S3_NO_SUCH_KEY'
  | 'S3_NETWORK'
  /** An EC2 request failed; EC2_ACCESS_DENIED (credentials refused, permission missing) and EC2_NETWORK (no answer) say why. */
  | 'EC2_ERROR'
  | 'EC2_ACCESS_DENIED'
  | 'EC2_NETWORK'
  /** An EBS direct API request failed; EBS_ACCESS_DENIED and EBS_NETWORK say why. */
  | 'EBS_ERROR'
  | 'EBS_ACCESS_DENIED'
  | 'EBS_NETWORK'
  /** A bundle cannot be deleted: registered AMIs use it as their image location. */
  | 'BUNDLE_REGISTERED'
  /** Instance metadata could not be read. */
  | 'METADATA_UNREACHABLE'
  /** An external program failed or is missing. */
  | 'EXTERNAL_TOOL'
  /** The operation was stopped by a signal or an abort signal. */
  | 'INTERRUPTED'
  /** Anything else that failed at run time. */
  | 'FAILED';

/** Which of the caller's options an error is about, by its name in the library's options (e.g. `ec2CertPath`). */
export interface OptionAt {
  option?: string;
  /** For "has invalid value" errors: the value and the reason, so a CLI can word them with its flag. */
  invalid?: { value: string; reason: string };
}

/** The base of every error the library throws on purpose. */
export class AmiToolsError extends Error {
  readonly code: ErrorCode;
  readonly option?: string;
  readonly invalid?: OptionAt['invalid'];
  constructor(message: string, code: ErrorCode, options?: { cause?: unknown } & OptionAt) {
    super(message, options);
    this.name = 'AmiToolsError';
    this.code = code;
    this.option = options?.option;
    this.invalid = options?.invalid;
  }
}

/** An option given to a library function is unusable: the caller must change it. */
export class UsageError extends AmiToolsError {
  constructor(message: string, options?: OptionAt) {
    super(message, 'INVALID_OPTION', options);
    this.name = 'UsageError';
  }
}

/** `option` has an unusable value: "ec2CertPath has invalid value 'x': reason" (a CLI words it with its flag). */
export function invalidOption(option: string, value: string, reason: string): UsageError {
  return new UsageError(`${option} has invalid value '${value}': ${reason}`, { option, invalid: { value, reason } });
}

/** A failure while doing the work (bad input data, I/O, crypto, network). */
export class ToolError extends AmiToolsError {
  constructor(message: string, options?: { cause?: unknown; code?: ErrorCode } & OptionAt) {
    super(message, options?.code ?? 'FAILED', options);
    this.name = 'ToolError';
  }
}

/** The work was stopped by its caller (an abort signal, e.g. from Ctrl-C); the message says what was left. */
export class InterruptedError extends AmiToolsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'INTERRUPTED', options);
    this.name = 'InterruptedError';
  }
}

/** The message of any thrown value, on one line. */
export function errorMessage(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
