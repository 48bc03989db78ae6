import type { CommandError, ErrorCode } from './types';

export type { CommandError, ErrorCode };

/** Whether `value` has the `{ code, message }` shape of a shell command error. */
export function isCommandError(value: unknown): value is CommandError {
  if (typeof value !== 'object' || value === null) {
    return false;
  }
  const candidate = value as Record<string, unknown>;
  return typeof candidate.code === 'string' && typeof candidate.message === 'string';
}

/**
 * Turns whatever a rejected command produced into a `CommandError`. The shell
 * always rejects with one, but Tauri itself rejects with a plain string when,
 * for example, a command is not registered.
 */
export function toCommandError(value: unknown): CommandError {
  if (isCommandError(value)) {
    return value;
  }
  if (value instanceof Error && value.message !== '') {
    return { code: 'internal', message: value.message };
  }
  if (typeof value === 'string' && value.trim() !== '') {
    return { code: 'internal', message: value.trim() };
  }
  return { code: 'internal', message: 'An unexpected error occurred.' };
}

/** Error codes that mean the console must return to the sign-in screen. */
export const SESSION_LOST_CODES: readonly ErrorCode[] = ['not_signed_in', 'session_ended'];

/** Whether `error` means there is no longer a usable session. */
export function isSessionLost(error: CommandError): boolean {
  return SESSION_LOST_CODES.includes(error.code);
}

type AuthErrorHandler = (error: CommandError) => void;

let authErrorHandler: AuthErrorHandler | null = null;

/**
 * Registers the application-wide handler for errors that change where the
 * operator may be: `not_signed_in` / `session_ended` (go to sign-in) and
 * `must_change_password` (go to the change-password screen) and
 * `mfa_enrolment_required` (go to the MFA enrolment screen). Returns a function
 * that removes it.
 */
export function setAuthErrorHandler(handler: AuthErrorHandler): () => void {
  authErrorHandler = handler;
  return () => {
    if (authErrorHandler === handler) {
      authErrorHandler = null;
    }
  };
}

/** Passes `error` to the registered handler when it is one it cares about. */
export function reportAuthError(error: CommandError): void {
  if (
    isSessionLost(error) ||
    error.code === 'must_change_password' ||
    error.code === 'mfa_enrolment_required'
  ) {
    authErrorHandler?.(error);
  }
}
