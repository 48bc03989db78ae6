import { isCommandError } from './api/errors';

const SEMVER = /^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?$/;

/**
 * Formats a raw version string for display: `"0.1.0"` becomes `"v0.1.0"`.
 * Anything that is not a plain semantic version is shown trimmed but otherwise
 * as-is, and an empty value becomes `"unknown"`.
 */
export function formatVersion(raw: string): string {
  const version = raw.trim();
  if (version === '') {
    return 'unknown';
  }
  return SEMVER.test(version) ? `v${version}` : version;
}

/**
 * Turns whatever a failed command or promise rejected with into a short,
 * human-readable message.
 */
export function describeError(error: unknown): string {
  if (isCommandError(error)) {
    return error.message;
  }
  if (error instanceof Error && error.message !== '') {
    return error.message;
  }
  if (typeof error === 'string' && error.trim() !== '') {
    return error.trim();
  }
  return 'An unexpected error occurred.';
}

const numberFormat = new Intl.NumberFormat('en-GB');

/** `100000` → `"100,000"`. */
export function formatCount(value: number): string {
  return numberFormat.format(value);
}

/** `1` → `"1 entry"`, `2` → `"2 entries"` with a grouped number. */
export function plural(count: number, one: string, many: string): string {
  return `${formatCount(count)} ${count === 1 ? one : many}`;
}

function pad(value: number): string {
  return String(value).padStart(2, '0');
}

/**
 * An RFC 3339 timestamp as local `YYYY-MM-DD HH:MM:SS` (unambiguous across
 * locales, sorts as text). Missing values become an em dash; unparsable ones
 * are shown as received.
 */
export function formatDateTime(iso: string | null | undefined): string {
  if (iso === null || iso === undefined || iso === '') {
    return '—';
  }
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) {
    return iso;
  }
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}

/** Just the date part of `formatDateTime`. */
export function formatDate(iso: string | null | undefined): string {
  const full = formatDateTime(iso);
  return /^\d{4}-\d{2}-\d{2} /.test(full) ? full.slice(0, 10) : full;
}

/**
 * How long ago `iso` was, relative to `now`, in the largest whole unit:
 * `"just now"`, `"5 min ago"`, `"3 h ago"`, `"12 days ago"`; future times read
 * `"in 4 min"`.
 */
export function formatRelative(iso: string | null | undefined, now: Date = new Date()): string {
  if (iso === null || iso === undefined || iso === '') {
    return 'never';
  }
  const then = new Date(iso).getTime();
  if (Number.isNaN(then)) {
    return iso;
  }
  const seconds = Math.round((now.getTime() - then) / 1000);
  const future = seconds < 0;
  const abs = Math.abs(seconds);
  let text: string;
  if (abs < 45) {
    return future ? 'in a moment' : 'just now';
  } else if (abs < 3600) {
    text = `${Math.max(1, Math.round(abs / 60))} min`;
  } else if (abs < 86_400) {
    text = `${Math.round(abs / 3600)} h`;
  } else {
    const days = Math.round(abs / 86_400);
    text = `${days} ${days === 1 ? 'day' : 'days'}`;
  }
  return future ? `in ${text}` : `${text} ago`;
}

/** Seconds left until `iso`, never negative. */
export function secondsUntil(iso: string, now: Date = new Date()): number {
  const then = new Date(iso).getTime();
  if (Number.isNaN(then)) {
    return 0;
  }
  return Math.max(0, Math.ceil((then - now.getTime()) / 1000));
}

/** `"JBSWY3DPEHPK3PXP"` → `"JBSW Y3DP EHPK 3PXP"` (for manual entry of an MFA secret). */
export function groupSecret(secret: string, size = 4): string {
  const clean = secret.replace(/\s+/g, '').toUpperCase();
  const groups: string[] = [];
  for (let i = 0; i < clean.length; i += size) {
    groups.push(clean.slice(i, i + size));
  }
  return groups.join(' ');
}

/**
 * A long key fingerprint shortened to its first and last characters, e.g.
 * `"SHA256:abcdef…7890"`; short ones are returned whole.
 */
export function shortenFingerprint(fingerprint: string, head = 12, tail = 6): string {
  if (fingerprint.length <= head + tail + 1) {
    return fingerprint;
  }
  return `${fingerprint.slice(0, head)}…${fingerprint.slice(-tail)}`;
}

/** `"compliance_officer"` → `"Compliance officer"`. */
export function humanise(identifier: string): string {
  const words = identifier.replace(/[_.-]+/g, ' ').trim();
  if (words === '') {
    return identifier;
  }
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/**
 * Audit `details` JSON text: a one-line summary and an indented form. Text that
 * is not JSON is returned as-is in both.
 */
export function formatDetails(details: string): { summary: string; pretty: string; empty: boolean } {
  const trimmed = details.trim();
  if (trimmed === '' || trimmed === '{}' || trimmed === 'null') {
    return { summary: '', pretty: '', empty: true };
  }
  try {
    const value: unknown = JSON.parse(trimmed);
    const pretty = JSON.stringify(value, null, 2);
    let summary: string;
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      summary = Object.entries(value as Record<string, unknown>)
        .map(([key, v]) => `${key}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(' ');
    } else {
      summary = JSON.stringify(value);
    }
    return { summary: summary.length > 120 ? `${summary.slice(0, 119)}…` : summary, pretty, empty: false };
  } catch {
    return { summary: trimmed, pretty: trimmed, empty: false };
  }
}
