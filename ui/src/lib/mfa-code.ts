const TOTP = /^\d{6}$/;
const BACKUP = /^[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}$/;

/**
 * Tidies what the operator typed as a second factor. A TOTP code loses spaces and
 * dashes (`"123 456"` → `"123456"`). A backup code (16 letters and digits, shown as
 * `XXXX-XXXX-XXXX-XXXX`) is upper-cased and regrouped however it was typed
 * (`"q3wq mr93w5vb-cagh"` → `"Q3WQ-MR93-W5VB-CAGH"`). Anything else is returned
 * compacted, for the plausibility check to refuse.
 */
export function normaliseMfaCode(raw: string): string {
  const compact = raw.replace(/[\s-]+/g, '');
  if (/^\d{6}$/.test(compact)) {
    return compact;
  }
  const upper = compact.toUpperCase();
  if (/^[A-Z0-9]{16}$/.test(upper)) {
    return upper.match(/.{4}/g)!.join('-');
  }
  return upper;
}

/** Whether `code` (normalised) has the shape of a TOTP code or a backup code. */
export function isPlausibleMfaCode(code: string): boolean {
  return TOTP.test(code) || BACKUP.test(code);
}
