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
