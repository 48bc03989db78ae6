/**
 * The error shape the Rust shell returns from a failing command
 * (`CommandError` in src-tauri/src/error.rs).
 */
export interface CommandError {
  code: string;
  message: string;
}

/** Whether `value` has the `{ code, message }` shape of a shell command error. */
export function isCommandError(value: unknown): value is CommandError {
  if (typeof value !== 'object' || value === null) {
    return false;
  }
  const candidate = value as Record<string, unknown>;
  return typeof candidate.code === 'string' && typeof candidate.message === 'string';
}
