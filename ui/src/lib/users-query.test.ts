import { describe, expect, it } from 'vitest';
import {
  EMPTY_FILTERS,
  hasFilters,
  isEmailSearch,
  pageBounds,
  pageCount,
  pageForNewSize,
  toUserQuery,
} from './users-query';

describe('toUserQuery', () => {
  it('sends null for every "any" filter', () => {
    expect(toUserQuery(EMPTY_FILTERS, 0, 25)).toEqual({
      kind: null,
      role: null,
      status: null,
      mfa: null,
      search: null,
      page: 0,
      page_size: 25,
    });
  });

  it('maps the form values to the contract fields', () => {
    expect(
      toUserQuery(
        { kind: 'operator', role: 'admin', status: 'locked', mfa: 'off', search: '  ali ' },
        3,
        100,
      ),
    ).toEqual({
      kind: 'operator',
      role: 'admin',
      status: 'locked',
      mfa: false,
      search: 'ali',
      page: 3,
      page_size: 100,
    });
    expect(toUserQuery({ ...EMPTY_FILTERS, mfa: 'on' }, 0, 50).mfa).toBe(true);
  });

  it('never sends a negative or fractional page', () => {
    expect(toUserQuery(EMPTY_FILTERS, -2, 25).page).toBe(0);
    expect(toUserQuery(EMPTY_FILTERS, 1.7, 25).page).toBe(1);
  });
});

describe('paging', () => {
  it('counts pages, with at least one', () => {
    expect(pageCount(0, 25)).toBe(1);
    expect(pageCount(25, 25)).toBe(1);
    expect(pageCount(26, 25)).toBe(2);
    expect(pageCount(100000, 100)).toBe(1000);
  });

  it('gives 1-based inclusive bounds', () => {
    expect(pageBounds(0, 25, 100000)).toEqual({ from: 1, to: 25 });
    expect(pageBounds(3, 25, 90)).toEqual({ from: 76, to: 90 });
    expect(pageBounds(0, 25, 0)).toEqual({ from: 0, to: 0 });
    expect(pageBounds(9, 25, 30)).toEqual({ from: 0, to: 0 });
  });

  it('keeps the first visible row when the page size changes', () => {
    expect(pageForNewSize(4, 25, 100)).toBe(1); // row 101 is on page 1 of 100
    expect(pageForNewSize(1, 100, 25)).toBe(4);
    expect(pageForNewSize(0, 50, 25)).toBe(0);
  });
});

describe('search and filters', () => {
  it('treats a term with @ as an exact e-mail lookup', () => {
    expect(isEmailSearch('alice@example.org')).toBe(true);
    expect(isEmailSearch('alice')).toBe(false);
  });

  it('knows when any filter is set', () => {
    expect(hasFilters(EMPTY_FILTERS)).toBe(false);
    expect(hasFilters({ ...EMPTY_FILTERS, search: '   ' })).toBe(false);
    expect(hasFilters({ ...EMPTY_FILTERS, mfa: 'off' })).toBe(true);
  });
});
