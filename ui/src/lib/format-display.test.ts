import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  formatCount,
  formatDate,
  formatDateTime,
  formatDetails,
  formatRelative,
  groupSecret,
  humanise,
  plural,
  secondsUntil,
  shortenFingerprint,
} from './format';

describe('groupSecret', () => {
  it('groups a base32 secret in fours', () => {
    expect(groupSecret('JBSWY3DPEHPK3PXP')).toBe('JBSW Y3DP EHPK 3PXP');
  });

  it('keeps a short last group', () => {
    expect(groupSecret('ABCDEFGHIJ')).toBe('ABCD EFGH IJ');
  });

  it('normalises spacing and case first', () => {
    expect(groupSecret(' jbsw y3dp\nehpk ')).toBe('JBSW Y3DP EHPK');
  });

  it('returns an empty string for an empty secret', () => {
    expect(groupSecret('')).toBe('');
  });
});

describe('shortenFingerprint', () => {
  const full = 'SHA256:6f1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f';

  it('keeps the head and tail with an ellipsis', () => {
    expect(shortenFingerprint(full)).toBe('SHA256:6f1b2…3d4e5f');
  });

  it('leaves short fingerprints whole', () => {
    expect(shortenFingerprint('ab:cd:ef')).toBe('ab:cd:ef');
  });
});

describe('formatDateTime / formatDate', () => {
  it('formats an RFC 3339 time as local YYYY-MM-DD HH:MM:SS', () => {
    const iso = new Date(2024, 2, 5, 7, 8, 9).toISOString();
    expect(formatDateTime(iso)).toBe('2024-03-05 07:08:09');
    expect(formatDate(iso)).toBe('2024-03-05');
  });

  it('shows a dash for missing values and unparsable text as-is', () => {
    expect(formatDateTime(null)).toBe('—');
    expect(formatDateTime('')).toBe('—');
    expect(formatDateTime('yesterday')).toBe('yesterday');
    expect(formatDate(null)).toBe('—');
  });
});

describe('formatRelative', () => {
  const now = new Date('2024-06-01T12:00:00Z');

  it('uses the largest whole unit', () => {
    expect(formatRelative('2024-06-01T11:59:50Z', now)).toBe('just now');
    expect(formatRelative('2024-06-01T11:55:00Z', now)).toBe('5 min ago');
    expect(formatRelative('2024-06-01T09:00:00Z', now)).toBe('3 h ago');
    expect(formatRelative('2024-05-31T12:00:00Z', now)).toBe('1 day ago');
    expect(formatRelative('2024-05-20T12:00:00Z', now)).toBe('12 days ago');
  });

  it('reads future times forwards', () => {
    expect(formatRelative('2024-06-01T12:04:00Z', now)).toBe('in 4 min');
  });

  it('says never for a missing time', () => {
    expect(formatRelative(null, now)).toBe('never');
  });
});

describe('secondsUntil', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2024-06-01T12:00:00Z'));
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('counts whole seconds up to the deadline and never goes negative', () => {
    expect(secondsUntil('2024-06-01T12:05:00Z')).toBe(300);
    expect(secondsUntil('2024-06-01T11:00:00Z')).toBe(0);
    expect(secondsUntil('not a date')).toBe(0);
  });
});

describe('formatCount / plural / humanise', () => {
  it('groups thousands', () => {
    expect(formatCount(100000)).toBe('100,000');
    expect(formatCount(0)).toBe('0');
  });

  it('picks singular or plural', () => {
    expect(plural(1, 'entry', 'entries')).toBe('1 entry');
    expect(plural(2500, 'entry', 'entries')).toBe('2,500 entries');
  });

  it('turns identifiers into words', () => {
    expect(humanise('compliance_officer')).toBe('Compliance officer');
    expect(humanise('rotating_out')).toBe('Rotating out');
    expect(humanise('users_read')).toBe('Users read');
  });
});

describe('formatDetails', () => {
  it('summarises an object on one line and indents it', () => {
    const out = formatDetails('{"username":"alice","roles":["admin"]}');
    expect(out.empty).toBe(false);
    expect(out.summary).toBe('username=alice roles=["admin"]');
    expect(out.pretty).toContain('\n  "username": "alice"');
  });

  it('treats empty objects and null as no details', () => {
    expect(formatDetails('{}').empty).toBe(true);
    expect(formatDetails('  ').empty).toBe(true);
    expect(formatDetails('null').empty).toBe(true);
  });

  it('passes non-JSON text through', () => {
    expect(formatDetails('plain text')).toEqual({
      summary: 'plain text',
      pretty: 'plain text',
      empty: false,
    });
  });

  it('truncates long summaries', () => {
    const long = JSON.stringify({ note: 'x'.repeat(300) });
    expect(formatDetails(long).summary.length).toBe(120);
    expect(formatDetails(long).summary.endsWith('…')).toBe(true);
  });
});
