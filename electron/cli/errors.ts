// Errors the CLI reports as one line without a stack: the user's input was wrong, or a file
// was; exit code 2 for bad usage, 1 for everything else.
import { describeError } from '../core/util/ioErrors.ts';

export class UsageError extends Error {
  override name = 'UsageError';
}

export function messageOf(error: unknown): string {
  return describeError(error);
}
