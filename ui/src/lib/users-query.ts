import type { UserQuery, UserStatus } from './api/types';

export const PAGE_SIZES = [25, 50, 100] as const;
export type PageSize = (typeof PAGE_SIZES)[number];

/** Filter values as the form holds them ('' = any). */
export interface UserFilters {
  kind: '' | 'operator' | 'platform';
  role: string;
  status: '' | UserStatus;
  mfa: '' | 'on' | 'off';
  search: string;
}

export const EMPTY_FILTERS: UserFilters = { kind: '', role: '', status: '', mfa: '', search: '' };

/** Role filter options (every role the core knows, not only assignable ones). */
export const FILTER_ROLES = ['admin', 'moderator', 'compliance_officer', 'service', 'user'] as const;

/** Whether a search term is an exact e-mail lookup rather than a username prefix. */
export function isEmailSearch(search: string): boolean {
  return search.includes('@');
}

/** Builds the `users_list` request. */
export function toUserQuery(filters: UserFilters, page: number, pageSize: number): UserQuery {
  const search = filters.search.trim();
  return {
    kind: filters.kind === '' ? null : filters.kind,
    role: filters.role === '' ? null : filters.role,
    status: filters.status === '' ? null : filters.status,
    mfa: filters.mfa === '' ? null : filters.mfa === 'on',
    search: search === '' ? null : search,
    page: Math.max(0, Math.floor(page)),
    page_size: pageSize,
  };
}

/** Number of pages for `total` rows (at least 1, so "page 1 of 1" for an empty result). */
export function pageCount(total: number, pageSize: number): number {
  return Math.max(1, Math.ceil(total / pageSize));
}

/** `"1–25 of 100,000"`-style bounds (1-based, inclusive); `{ from: 0, to: 0 }` when empty. */
export function pageBounds(page: number, pageSize: number, total: number): { from: number; to: number } {
  if (total <= 0) {
    return { from: 0, to: 0 };
  }
  const from = page * pageSize + 1;
  const to = Math.min(total, (page + 1) * pageSize);
  return from > total ? { from: 0, to: 0 } : { from, to };
}

/** Keeps the first visible row visible when the page size changes. */
export function pageForNewSize(page: number, oldSize: number, newSize: number): number {
  return Math.floor((page * oldSize) / newSize);
}

/** Whether any filter differs from "any". */
export function hasFilters(filters: UserFilters): boolean {
  return (
    filters.kind !== '' ||
    filters.role !== '' ||
    filters.status !== '' ||
    filters.mfa !== '' ||
    filters.search.trim() !== ''
  );
}
