import { describe, expect, it } from 'vitest';
import type { KeyHolderView, PurposeView } from './api/types';
import { missingGrants, purposeLabel, purposeRows, rotationStatus } from './keys';

const pii: PurposeView = {
  purpose: 'contact',
  current: 2,
  versions: [
    { version: 2, status: 'active', rows: 900, grants: 2 },
    { version: 1, status: 'rotating_out', rows: 100, grants: 2 },
  ],
  rotation: null,
};
const hash: PurposeView = {
  purpose: 'content_hash',
  current: 1,
  versions: [{ version: 1, status: 'active', rows: 10, grants: 1 }],
  rotation: null,
};

const holder = (granted: string[]): KeyHolderView => ({
  username: 'bob',
  roles: ['admin'],
  key_pairs: 1,
  fingerprint: 'SHA256:abc',
  granted,
  entitled: ['contact'],
  status: 'active',
});

describe('keys helpers', () => {
  it('lists purposes with a current version the holder lacks', () => {
    // content_hash has a current version but is not the holder's: never missing.
    expect(missingGrants(holder([]), [pii, hash])).toEqual(['contact']);
    expect(missingGrants(holder(['contact']), [pii, hash])).toEqual([]);
    expect(missingGrants({ ...holder([]), entitled: ['contact', 'content_hash'] }, [pii, hash])).toEqual([
      'contact',
      'content_hash',
    ]);
    // A purpose outside the holder's roles is never missing.
    expect(missingGrants({ ...holder([]), entitled: [] }, [pii, hash])).toEqual([]);
  });

  it('sums rows over versions', () => {
    expect(purposeRows(pii)).toBe(1000);
  });

  it('prefers live progress, then the stored rotation', () => {
    expect(rotationStatus(pii, { purpose: 'contact', rows_done: 5, rows_total: 50, finished: false })).toEqual({
      done: 5,
      total: 50,
      finished: false,
    });
    const stored = { ...pii, rotation: { from: 1, to: 2, rows_done: 30, rows_left: 70 } };
    expect(rotationStatus(stored, undefined)).toEqual({ done: 30, total: 100, finished: false });
    expect(rotationStatus(pii, { purpose: 'contact', rows_done: 50, rows_total: 50, finished: true })).toEqual({
      done: 50,
      total: 50,
      finished: true,
    });
    expect(rotationStatus(pii, undefined)).toBeNull();
  });

  it('labels purposes, falling back to the identifier', () => {
    expect(purposeLabel('contact')).toBe('Contact data');
    expect(purposeLabel('other')).toBe('other');
  });
});
