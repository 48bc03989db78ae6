import { toCommandError } from './api/errors';
import type { CommandError, ErrorCode } from './api/types';

export interface ErrorCopy {
  code: ErrorCode;
  /** Short headline, distinct per error code. */
  title: string;
  /** The core's own explanation (wait time, policy rule, which field…), or guidance. */
  detail: string;
}

const TITLES: Record<ErrorCode, string> = {
  invalid_input: 'Check the highlighted details',
  not_signed_in: 'You are not signed in',
  session_ended: 'Your session has ended',
  session_locked: 'Vigil is locked',
  forbidden: 'Your role does not allow this',
  invalid_credentials: 'Username or password is incorrect',
  throttled: 'Too many attempts',
  not_active: 'This account cannot sign in',
  mfa_invalid: 'That code was not accepted',
  challenge_expired: 'The sign-in step timed out',
  password_rejected: 'Choose a different password',
  must_change_password: 'Change your password first',
  mfa_enrolment_required: 'Set up two-factor authentication first',
  not_found: 'Not found',
  conflict: 'That conflicts with the current state',
  keys_unavailable: 'Data keys are not available on this machine',
  held: 'A legal hold blocks this',
  not_verified: 'The subject’s identity is not verified',
  code_invalid: 'That verification code is wrong',
  verification_locked: 'Verification is locked',
  code_expired: 'The verification code has expired',
  not_applicable: 'That action does not apply now',
  stopped: 'Stopped',
  busy: 'Running elsewhere right now',
  config_invalid: 'The configuration cannot be used',
  io: 'The file could not be read or written',
  database: 'The database cannot be reached',
  internal: 'Something went wrong',
};

/** Guidance shown when the core's message adds nothing (or is empty). */
const FALLBACK_DETAIL: Record<ErrorCode, string> = {
  invalid_input: 'One of the values is not valid.',
  not_signed_in: 'Sign in to continue.',
  session_ended: 'Sign in again to continue.',
  session_locked: 'Enter your password and code to continue where you were.',
  forbidden: 'Ask an administrator if you need this permission.',
  invalid_credentials: 'Check both and try again. Repeated failures lock the account for a while.',
  throttled: 'Wait a moment before trying again.',
  not_active: 'The account is suspended or deleted. Contact an administrator.',
  mfa_invalid:
    'Enter the current 6-digit code from your authenticator app, or an unused backup code.',
  challenge_expired: 'Enter your username and password again.',
  password_rejected: 'The password does not meet the password policy.',
  must_change_password:
    'An administrator set your password (for a new account or a reset); choose your own to continue.',
  mfa_enrolment_required:
    'Your role requires two-factor authentication; enrol your authenticator app to continue.',
  not_found: 'It may have been removed in the meantime.',
  conflict: 'Refresh and try again.',
  keys_unavailable: 'Ask a key holder to grant you the data keys.',
  held: 'Release the legal hold, or close the incident, before erasing.',
  not_verified: 'Enter the code the subject received first.',
  code_invalid: 'Check the code with the subject and try again.',
  verification_locked: 'Too many wrong codes: issue a new code and send it to the subject.',
  code_expired: 'Issue a new code and send it to the subject.',
  not_applicable: 'The incident changed in the meantime: refresh it and choose again.',
  stopped: 'The run stopped where you asked. Run it again to resume from there.',
  busy: 'Another console or worker is doing this now. Try again when it has finished.',
  config_invalid: 'Correct the setting in the configuration file and restart Vigil.',
  io: 'Check that the folder exists and that you may write to it.',
  database: 'Check the database server or file and try again.',
  internal: 'Try again. If it keeps happening, check the Vigil log.',
};

/**
 * Turns a rejection into a headline and explanation. For
 * `invalid_credentials` the core's text is replaced by fixed copy so the
 * message never hints at which of the two was wrong.
 */
export function errorCopy(error: unknown): ErrorCopy {
  const e: CommandError = toCommandError(error);
  const code: ErrorCode = e.code in TITLES ? e.code : 'internal';
  const message = e.message.trim();
  const useFallback = message === '' || code === 'invalid_credentials';
  return {
    code,
    title: TITLES[code],
    detail: useFallback ? FALLBACK_DETAIL[code] : message,
  };
}

/** One-line form for toasts: `"Title. Detail"`. */
export function errorLine(error: unknown): string {
  const copy = errorCopy(error);
  const detail = copy.detail.replace(/\.$/, '');
  return `${copy.title}: ${detail}.`;
}
