// Data retention: labels, the check of a policy edit (the core checks it again, and its
// message is the one that counts), what an edit changes, and the words for plans and runs.
import type {
  RetentionAction,
  RetentionCategory,
  RetentionHeldView,
  RetentionPlanItemView,
  RetentionPolicyChange,
  RetentionPolicyView,
  RetentionRunStatus,
  RetentionRunView,
} from './api/types';
import type { Tone } from './dsr';
import { formatCount, plural } from './format';

// ---------------------------------------------------------------- labels

const CATEGORY_COPY: Record<RetentionCategory, { label: string; description: string }> = {
  activity: { label: 'Activity', description: 'Sign-ins and submissions that feed the detectors' },
  comments: { label: 'Comments', description: 'Comments on live events; anonymising keeps the thread readable' },
  sessions: { label: 'Sessions', description: 'Operator sessions and tokens, counted from their expiry' },
  deleted_users: { label: 'Deleted accounts', description: 'Accounts deleted on the platform, kept a while as a backup' },
  audit: { label: 'Audit log', description: 'Archived to compressed, verifiable segments' },
};

export function categoryLabel(category: string): string {
  return CATEGORY_COPY[category as RetentionCategory]?.label ?? category.replace(/_/g, ' ');
}

export function categoryDescription(category: string): string {
  return CATEGORY_COPY[category as RetentionCategory]?.description ?? '';
}

const ACTION_COPY: Record<RetentionAction, { label: string; done: string }> = {
  delete: { label: 'Delete', done: 'deleted' },
  anonymize: { label: 'Anonymise', done: 'anonymised' },
  archive: { label: 'Archive', done: 'archived' },
};

export function actionLabel(action: string): string {
  return ACTION_COPY[action as RetentionAction]?.label ?? action;
}

/** `1825` → `"1,825 days (5 years)"`; `90` → `"90 days"`. */
export function periodLabel(days: number): string {
  const text = plural(days, 'day', 'days');
  if (days >= 365 && days % 365 === 0) {
    const years = days / 365;
    return `${text} (${years} ${years === 1 ? 'year' : 'years'})`;
  }
  return text;
}

/** `(90, 'delete')` → `"Kept 90 days, then deleted"`. */
export function keepsPhrase(days: number, action: string): string {
  const done = ACTION_COPY[action as RetentionAction]?.done ?? action;
  return `Kept ${periodLabel(days)}, then ${done}`;
}

// ---------------------------------------------------------------- editing a policy

/** A row's edit in progress. `period` is `null` while the field is empty or not a number. */
export interface PolicyDraft {
  period: number | null;
  action: string;
  enabled: boolean;
}

export type PolicyRules = Pick<RetentionPolicyView, 'category' | 'min_days' | 'max_days' | 'allowed_actions'>;

export function draftOf(policy: Pick<RetentionPolicyView, 'period_days' | 'action' | 'enabled'>): PolicyDraft {
  return { period: policy.period_days, action: policy.action, enabled: policy.enabled };
}

/**
 * Why `draft` breaks the category's rules (as the core words it), or `null` when it keeps them.
 * The same rules come from the core with each policy, so the two agree; the core checks again.
 */
export function policyProblem(rules: PolicyRules, draft: PolicyDraft): string | null {
  const name = categoryLabel(rules.category).toLowerCase();
  const period = draft.period;
  if (period === null || Number.isNaN(period)) {
    return `Enter the ${name} period in days.`;
  }
  if (!Number.isInteger(period)) {
    return `The ${name} period must be a whole number of days.`;
  }
  if (period < rules.min_days || period > rules.max_days) {
    return (
      `The ${name} period must be from ${formatCount(rules.min_days)} to ` +
      `${formatCount(rules.max_days)} days, not ${formatCount(period)}.`
    );
  }
  if (!(rules.allowed_actions as string[]).includes(draft.action)) {
    const allowed = rules.allowed_actions.map((a) => actionLabel(a).toLowerCase()).join(' or ');
    return `${categoryLabel(rules.category)} records cannot be given the ${actionLabel(draft.action).toLowerCase()} action; allowed: ${allowed}.`;
  }
  return null;
}

/**
 * Whether `draft` can be put to the core at all: its period is a whole number. The core is asked
 * even when `policyProblem` finds the value out of range, so the refusal shown is the core's.
 */
export function canSend(draft: PolicyDraft): boolean {
  return draft.period !== null && Number.isInteger(draft.period);
}

/** What saving `draft` over `policy` changes: only the values that differ. */
export function toChange(
  policy: Pick<RetentionPolicyView, 'category' | 'period_days' | 'action' | 'enabled'>,
  draft: PolicyDraft,
): RetentionPolicyChange {
  return {
    category: policy.category,
    period_days: draft.period !== policy.period_days ? draft.period : null,
    action: draft.action !== policy.action ? draft.action : null,
    enabled: draft.enabled !== policy.enabled ? draft.enabled : null,
  };
}

/** Whether `draft` differs from the saved `policy`. */
export function isDirty(
  policy: Pick<RetentionPolicyView, 'period_days' | 'action' | 'enabled'>,
  draft: PolicyDraft,
): boolean {
  return draft.period !== policy.period_days || draft.action !== policy.action || draft.enabled !== policy.enabled;
}

/** A core message as a sentence: `"the audit period … not 10"` → `"The audit period … not 10."`. */
export function asSentence(message: string): string {
  const text = message.trim();
  if (text === '') return text;
  const first = text.charAt(0).toUpperCase() + text.slice(1);
  return /[.!?]$/.test(first) ? first : `${first}.`;
}

// ---------------------------------------------------------------- plans

/** Why held records are kept, largest reason first: `["12 tied to an open incident", …]`. */
export function heldReasons(held: RetentionHeldView): string[] {
  const reasons: [number, string][] = [
    [held.legal_hold, 'under a legal hold'],
    [held.open_incident, 'tied to an open incident'],
    [held.open_request, 'subject of an open request'],
  ];
  return reasons
    .filter(([count]) => count > 0)
    .sort((a, b) => b[0] - a[0])
    .map(([count, why]) => `${formatCount(count)} ${why}`);
}

/** What a run now would do over the enabled policies. */
export function planTotals(plan: readonly RetentionPlanItemView[]): { due: number; held: number; policies: number } {
  const enabled = plan.filter((item) => item.enabled);
  return {
    due: enabled.reduce((sum, item) => sum + item.due, 0),
    held: enabled.reduce((sum, item) => sum + item.held.total, 0),
    policies: enabled.filter((item) => item.due > 0).length,
  };
}

// ---------------------------------------------------------------- runs

const STATUS_COPY: Record<RetentionRunStatus, { label: string; tone: Tone }> = {
  running: { label: 'Running', tone: 'info' },
  completed: { label: 'Completed', tone: 'success' },
  failed: { label: 'Failed', tone: 'danger' },
};

export function runStatusCopy(status: string): { label: string; tone: Tone } {
  return STATUS_COPY[status as RetentionRunStatus] ?? { label: status, tone: 'neutral' };
}

/** Records acted on and held across a run's policies. */
export function runTotals(run: Pick<RetentionRunView, 'counts'>): { done: number; held: number } {
  return {
    done: run.counts.reduce((sum, c) => sum + c.done, 0),
    held: run.counts.reduce((sum, c) => sum + c.held, 0),
  };
}

/** The toast after a run: `"Retention run completed: 1,204 records acted on, 56 held."`. */
export function runSummary(run: Pick<RetentionRunView, 'status' | 'counts' | 'errors' | 'resumed'>): string {
  const { done, held } = runTotals(run);
  const head = run.resumed ? 'Interrupted retention run resumed and' : 'Retention run';
  const counts = `${plural(done, 'record', 'records')} acted on, ${formatCount(held)} held`;
  if (run.status === 'failed') {
    const failed = run.errors.map((e) => categoryLabel(e.category).toLowerCase()).join(', ');
    return `${head} finished with failures (${failed}): ${counts}.`;
  }
  return `${head} ${run.status === 'completed' ? 'completed' : 'stopped'}: ${counts}.`;
}
