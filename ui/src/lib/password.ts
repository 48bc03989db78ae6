/** Client-side minimum; the core's password policy is authoritative and may ask for more. */
export const MIN_PASSWORD_LENGTH = 12;
/** The core's maximum (characters after Unicode NFC normalisation, as the core counts them). */
export const MAX_PASSWORD_LENGTH = 128;

/**
 * Checks a new password and its confirmation before they are sent. Returns a
 * message to show, or `null` when the pair may be submitted.
 */
export function checkNewPassword(password: string, confirm: string): string | null {
  const length = [...password.normalize('NFC')].length;
  if (length < MIN_PASSWORD_LENGTH) {
    return `Use at least ${MIN_PASSWORD_LENGTH} characters.`;
  }
  if (length > MAX_PASSWORD_LENGTH) {
    return `Use at most ${MAX_PASSWORD_LENGTH} characters.`;
  }
  if (password !== confirm) {
    return 'The two passwords do not match.';
  }
  return null;
}

/** Accepts `postgres://` and `postgresql://` connection URLs with a host. */
export function checkPostgresUrl(url: string): string | null {
  const trimmed = url.trim();
  if (trimmed === '') {
    return 'Enter the PostgreSQL connection URL.';
  }
  if (!/^postgres(ql)?:\/\/[^/\s]+/.test(trimmed)) {
    return 'The URL must start with postgres:// or postgresql:// followed by the host.';
  }
  return null;
}
