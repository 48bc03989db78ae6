import type { AuditQuery, AuditRow } from './api/types';

export const AUDIT_PAGE_SIZE = 100;

/** Builds the `audit_list` request; empty filters mean "any". */
export function toAuditQuery(
  actor: string,
  action: string,
  beforeSeq: number | null,
  limit = AUDIT_PAGE_SIZE,
): AuditQuery {
  const a = actor.trim();
  const act = action.trim();
  return { actor: a === '' ? null : a, action: act === '' ? null : act, before_seq: beforeSeq, limit };
}

/** The `before_seq` that fetches the page after `rows` (newest first), or `null` if none. */
export function nextBeforeSeq(rows: readonly AuditRow[]): number | null {
  const last = rows[rows.length - 1];
  return last === undefined ? null : last.seq;
}

/** Appends an older page, dropping any entries already shown. */
export function appendOlder(shown: readonly AuditRow[], older: readonly AuditRow[]): AuditRow[] {
  const seen = new Set(shown.map((row) => row.seq));
  return [...shown, ...older.filter((row) => !seen.has(row.seq))];
}

/** Whether an older page may exist: a full page came back and entries before the oldest shown can exist. */
export function mayHaveOlder(pageLength: number, limit: number, oldestSeq: number | null): boolean {
  return pageLength >= limit && oldestSeq !== null && oldestSeq > 0;
}
