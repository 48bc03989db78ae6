const TOTP = /^\d{6,8}$/;
const BACKUP = /^[a-z0-9]{4}-[a-z0-9]{4}$/;

/**
 * Tidies what the operator typed as a second factor: TOTP codes lose spaces and
 * dashes (`"123 456"` → `"123456"`); backup codes are lower-cased and keep their
 * dash (`" ABCD-EFGH "` → `"abcd-efgh"`); an 8-character code typed without its
 * dash gets it back.
 */
export function normaliseMfaCode(raw: string): string {
  const compact = raw.replace(/\s+/g, '');
  const digitsOnly = compact.replace(/-/g, '');
  if (/^\d+$/.test(digitsOnly) && digitsOnly.length <= 8 && !BACKUP.test(compact.toLowerCase())) {
    return digitsOnly;
  }
  const lower = compact.toLowerCase();
  if (/^[a-z0-9]{8}$/.test(lower)) {
    return `${lower.slice(0, 4)}-${lower.slice(4)}`;
  }
  return lower;
}

/** Whether `code` (normalised) has the shape of a TOTP code or a backup code. */
export function isPlausibleMfaCode(code: string): boolean {
  return TOTP.test(code) || BACKUP.test(code);
}
