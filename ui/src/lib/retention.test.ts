import { describe, expect, it } from 'vitest';
import type { RetentionPlanItemView, RetentionPolicyView, RetentionRunView } from './api/types';
import {
  actionLabel,
  asSentence,
  canSend,
  categoryLabel,
  draftOf,
  heldReasons,
  isDirty,
  keepsPhrase,
  periodLabel,
  planTotals,
  policyProblem,
  runStatusCopy,
  runSummary,
  runTotals,
  toChange,
} from './retention';

function policy(over: Partial<RetentionPolicyView> = {}): RetentionPolicyView {
  return {
    category: 'activity',
    period_days: 90,
    action: 'delete',
    enabled: true,
    allowed_actions: ['delete'],
    min_days: 1,
    max_days: 36_500,
    updated_at: null,
    updated_by: null,
    ...over,
  };
}

const audit = policy({ category: 'audit', period_days: 2_555, action: 'archive', allowed_actions: ['archive'], min_days: 365 });
const comments = policy({
  category: 'comments',
  period_days: 1_825,
  action: 'anonymize',
  allowed_actions: ['anonymize', 'delete'],
  min_days: 30,
});

function planItem(over: Partial<RetentionPlanItemView> = {}): RetentionPlanItemView {
  return {
    category: 'activity',
    action: 'delete',
    period_days: 90,
    enabled: true,
    cutoff: '2026-08-25T00:00:00.000000Z',
    due: 0,
    oldest: null,
    held: { legal_hold: 0, open_incident: 0, open_request: 0, total: 0 },
    ...over,
  };
}

function run(over: Partial<RetentionRunView> = {}): RetentionRunView {
  return {
    id: 'r-1',
    policy: null,
    status: 'completed',
    started_by: 'root-admin',
    started_at: '2026-11-23T10:00:00.000000Z',
    finished_at: '2026-11-23T10:00:02.000000Z',
    as_of: '2026-11-23T10:00:00.000000Z',
    counts: [
      { category: 'activity', done: 1_200, held: 40, chunks: 1, seconds: 0.4, skipped: false },
      { category: 'comments', done: 4, held: 2, chunks: 1, seconds: 0.1, skipped: false },
    ],
    errors: [],
    resumed: false,
    ...over,
  };
}

describe('labels', () => {
  it('names categories and actions in the UI’s words', () => {
    expect(categoryLabel('deleted_users')).toBe('Deleted accounts');
    expect(categoryLabel('backups')).toBe('backups');
    expect(actionLabel('anonymize')).toBe('Anonymise');
  });

  it('reads periods in days, and years where they are whole', () => {
    expect(periodLabel(1)).toBe('1 day');
    expect(periodLabel(90)).toBe('90 days');
    expect(periodLabel(1_825)).toBe('1,825 days (5 years)');
    expect(keepsPhrase(365, 'archive')).toBe('Kept 365 days (1 year), then archived');
  });
});

describe('policyProblem', () => {
  it('accepts a period within the category’s range and an allowed action', () => {
    expect(policyProblem(policy(), { period: 60, action: 'delete', enabled: true })).toBeNull();
    expect(policyProblem(audit, { period: 365, action: 'archive', enabled: false })).toBeNull();
    expect(policyProblem(comments, { period: 30, action: 'delete', enabled: true })).toBeNull();
  });

  it('refuses periods out of range, saying the range', () => {
    expect(policyProblem(policy(), { period: 0, action: 'delete', enabled: true })).toBe(
      'The activity period must be from 1 to 36,500 days, not 0.',
    );
    expect(policyProblem(audit, { period: 10, action: 'archive', enabled: true })).toBe(
      'The audit log period must be from 365 to 36,500 days, not 10.',
    );
    expect(policyProblem(policy(), { period: 36_501, action: 'delete', enabled: true })).toMatch(/not 36,501\.$/);
    expect(policyProblem(comments, { period: -5, action: 'anonymize', enabled: true })).toMatch(/from 30 to/);
  });

  it('refuses an empty or fractional period', () => {
    expect(policyProblem(policy(), { period: null, action: 'delete', enabled: true })).toBe(
      'Enter the activity period in days.',
    );
    expect(policyProblem(policy(), { period: Number.NaN, action: 'delete', enabled: true })).toBe(
      'Enter the activity period in days.',
    );
    expect(policyProblem(policy(), { period: 7.5, action: 'delete', enabled: true })).toBe(
      'The activity period must be a whole number of days.',
    );
  });

  it('refuses an action the category does not allow, naming those it does', () => {
    expect(policyProblem(audit, { period: 2_555, action: 'delete', enabled: true })).toBe(
      'Audit log records cannot be given the delete action; allowed: archive.',
    );
    expect(policyProblem(policy(), { period: 90, action: 'anonymize', enabled: true })).toBe(
      'Activity records cannot be given the anonymise action; allowed: delete.',
    );
  });
});

describe('editing', () => {
  it('sends only what changed', () => {
    const saved = comments;
    const draft = { ...draftOf(saved), period: 60 };
    expect(isDirty(saved, draftOf(saved))).toBe(false);
    expect(isDirty(saved, draft)).toBe(true);
    expect(toChange(saved, draft)).toEqual({ category: 'comments', period_days: 60, action: null, enabled: null });
    expect(toChange(saved, { period: 1_825, action: 'delete', enabled: false })).toEqual({
      category: 'comments',
      period_days: null,
      action: 'delete',
      enabled: false,
    });
  });

  it('puts any whole number to the core, which has the last word', () => {
    expect(canSend({ period: 0, action: 'delete', enabled: true })).toBe(true);
    expect(canSend({ period: 60, action: 'delete', enabled: true })).toBe(true);
    expect(canSend({ period: null, action: 'delete', enabled: true })).toBe(false);
    expect(canSend({ period: 2.5, action: 'delete', enabled: true })).toBe(false);
    expect(canSend({ period: Number.NaN, action: 'delete', enabled: true })).toBe(false);
  });

  it('shows the core’s message as a sentence', () => {
    expect(asSentence('the audit period must be from 365 to 36500 days, not 10')).toBe(
      'The audit period must be from 365 to 36500 days, not 10.',
    );
    expect(asSentence('Already a sentence.')).toBe('Already a sentence.');
    expect(asSentence('  ')).toBe('');
  });
});

describe('plans and runs', () => {
  it('gives the reasons records are held, largest first', () => {
    expect(heldReasons({ legal_hold: 3, open_incident: 12, open_request: 0, total: 15 })).toEqual([
      '12 tied to an open incident',
      '3 under a legal hold',
    ]);
    expect(heldReasons({ legal_hold: 0, open_incident: 0, open_request: 0, total: 0 })).toEqual([]);
  });

  it('totals what a run would do over the enabled policies only', () => {
    const plan = [
      planItem({ due: 1_000, held: { legal_hold: 1, open_incident: 2, open_request: 3, total: 6 } }),
      planItem({ category: 'comments', action: 'anonymize', due: 5, enabled: false }),
      planItem({ category: 'sessions', due: 0 }),
    ];
    expect(planTotals(plan)).toEqual({ due: 1_000, held: 6, policies: 1 });
  });

  it('summarises a run', () => {
    expect(runTotals(run())).toEqual({ done: 1_204, held: 42 });
    expect(runSummary(run())).toBe('Retention run completed: 1,204 records acted on, 42 held.');
    expect(
      runSummary(run({ status: 'failed', errors: [{ category: 'audit', message: 'no audit archive folder' }] })),
    ).toBe('Retention run finished with failures (audit log): 1,204 records acted on, 42 held.');
    expect(runSummary(run({ resumed: true, counts: [] }))).toBe(
      'Interrupted retention run resumed and completed: 0 records acted on, 0 held.',
    );
    expect(runStatusCopy('completed')).toEqual({ label: 'Completed', tone: 'success' });
    expect(runStatusCopy('odd').tone).toBe('neutral');
  });
});
