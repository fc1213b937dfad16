// Errors the CLI reports as one line without a stack: the user's input was wrong, or a file
// was; exit code 2 for bad usage, 1 for everything else.
export class UsageError extends Error {
  override name = 'UsageError';
}

export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message.split('\n')[0] ?? String(error);
  return String(error);
}
