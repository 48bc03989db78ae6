import { describe, expect, it } from 'vitest';
import type { AuditRow } from './api/types';
import { appendOlder, mayHaveOlder, nextBeforeSeq, toAuditQuery } from './audit-query';

const row = (seq: number): AuditRow => ({
  seq,
  at: '2024-06-01T12:00:00Z',
  actor: 'u1',
  actor_name: 'alice',
  action: 'user.create',
  target: null,
  target_name: null,
  details: '{}',
  hash: 'ab',
});

describe('audit paging', () => {
  it('builds the query with null for empty filters', () => {
    expect(toAuditQuery(' ', '', null)).toEqual({ actor: null, action: null, before_seq: null, limit: 100 });
    expect(toAuditQuery('alice ', 'user.suspend', 40, 50)).toEqual({
      actor: 'alice',
      action: 'user.suspend',
      before_seq: 40,
      limit: 50,
    });
  });

  it('pages back from the oldest row shown', () => {
    expect(nextBeforeSeq([row(10), row(9), row(8)])).toBe(8);
    expect(nextBeforeSeq([])).toBeNull();
  });

  it('appends older rows without duplicates', () => {
    expect(appendOlder([row(10), row(9)], [row(9), row(8)]).map((r) => r.seq)).toEqual([10, 9, 8]);
  });

  it('offers older entries only after a full page', () => {
    expect(mayHaveOlder(100, 100, 501)).toBe(true);
    expect(mayHaveOlder(37, 100, 1)).toBe(false);
    expect(mayHaveOlder(100, 100, null)).toBe(false);
  });
});
