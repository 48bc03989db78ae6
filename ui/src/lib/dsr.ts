// Data-subject requests: labels, deadline wording, the run's step list as progress events
// arrive, and the checks of the forms (the core checks everything again).
import type {
  DsrKind,
  DsrListQuery,
  DsrProgressEvent,
  DsrStatus,
  DsrStepView,
  DsrView,
} from './api/types';

export const DSR_KINDS: readonly DsrKind[] = ['access', 'portability', 'erasure', 'rectification'];

export const DSR_STATUSES: readonly DsrStatus[] = [
  'received',
  'verifying',
  'verified',
  'in_progress',
  'completed',
  'rejected',
  'withdrawn',
];

export const KIND_COPY: Record<DsrKind, { label: string; article: string; description: string }> = {
  access: {
    label: 'Access',
    article: 'Art. 15',
    description: 'A copy of everything held about the subject (JSON and a readable HTML page).',
  },
  portability: {
    label: 'Portability',
    article: 'Art. 20',
    description: 'The subject’s own data in machine-readable files (a ZIP of JSON and CSV).',
  },
  erasure: {
    label: 'Erasure',
    article: 'Art. 17',
    description:
      'Everything about the subject removed, then a scan of the whole database proves nothing is left.',
  },
  rectification: {
    label: 'Rectification',
    article: 'Art. 16',
    description: 'Corrects the subject’s display name, email address or phone number.',
  },
};

const STATUS_COPY: Record<DsrStatus, { label: string; tone: Tone }> = {
  received: { label: 'Received', tone: 'neutral' },
  verifying: { label: 'Verifying identity', tone: 'info' },
  verified: { label: 'Verified', tone: 'accent' },
  in_progress: { label: 'In progress', tone: 'warning' },
  completed: { label: 'Completed', tone: 'success' },
  rejected: { label: 'Rejected', tone: 'danger' },
  withdrawn: { label: 'Withdrawn', tone: 'neutral' },
};

export type Tone = 'neutral' | 'info' | 'accent' | 'warning' | 'success' | 'danger';

export function kindLabel(kind: string): string {
  return KIND_COPY[kind as DsrKind]?.label ?? kind;
}

export function statusCopy(status: string): { label: string; tone: Tone } {
  return STATUS_COPY[status as DsrStatus] ?? { label: status, tone: 'neutral' };
}

/** No further transition is possible. */
export function isClosed(status: string): boolean {
  return status === 'completed' || status === 'rejected' || status === 'withdrawn';
}

const DAY_MS = 86_400_000;

/**
 * How the deadline reads in the inbox: overdue (with how long), due soon (with how long
 * left), or nothing for an open request with time to spare or a closed one.
 */
export function dueLabel(
  request: Pick<DsrView, 'status' | 'due_at' | 'overdue' | 'due_soon'>,
  now: Date = new Date(),
): { label: string; tone: Tone; state: 'overdue' | 'due_soon' | 'on_time' | 'closed' } {
  if (isClosed(request.status)) {
    return { label: '', tone: 'neutral', state: 'closed' };
  }
  const due = new Date(request.due_at).getTime();
  const diff = Number.isNaN(due) ? 0 : due - now.getTime();
  if (request.overdue) {
    const days = Math.floor(-diff / DAY_MS);
    return {
      label: days >= 1 ? `Overdue by ${days} ${days === 1 ? 'day' : 'days'}` : 'Overdue',
      tone: 'danger',
      state: 'overdue',
    };
  }
  if (request.due_soon) {
    const days = Math.max(0, Math.ceil(diff / DAY_MS));
    return {
      label: days <= 0 ? 'Due today' : days === 1 ? 'Due in 1 day' : `Due in ${days} days`,
      tone: 'warning',
      state: 'due_soon',
    };
  }
  return { label: '', tone: 'neutral', state: 'on_time' };
}

/** Inbox filters as the form holds them ('' = any). */
export interface DsrFilters {
  status: '' | DsrStatus;
  kind: '' | DsrKind;
  overdue: boolean;
  dueSoon: boolean;
}

export const EMPTY_DSR_FILTERS: DsrFilters = { status: '', kind: '', overdue: false, dueSoon: false };

export function toDsrQuery(filters: DsrFilters): DsrListQuery {
  return {
    status: filters.status === '' ? null : filters.status,
    kind: filters.kind === '' ? null : filters.kind,
    overdue: filters.overdue,
    due_soon: filters.dueSoon,
  };
}

// ---------------------------------------------------------------- the run's steps

/** One step of a run as the screen shows it. */
export interface RunStep {
  no: number;
  /** The step's name; '' until the core has named it. */
  name: string;
  state: 'pending' | 'running' | 'done' | 'failed' | 'skipped';
  rows: number;
}

const STEP_LABELS: Record<string, string> = {
  revoke_sessions: 'End the subject’s sessions',
  delete_auth_data: 'Delete sign-in data',
  delete_reactions: 'Delete reactions',
  delete_activity: 'Delete activity records',
  comments: 'Anonymise or delete comments',
  private_recipients: 'Remove from private conversations',
  detach_records: 'Detach remaining records',
  delete_profile: 'Delete the profile',
  residual_scan: 'Residual scan of the whole database',
};

/** `delete_activity` → "Delete activity records"; unknown names are humanised. */
export function stepLabel(name: string, no: number): string {
  if (name === '') return `Step ${no}`;
  if (STEP_LABELS[name]) return STEP_LABELS[name];
  const words = name.replace(/[_.-]+/g, ' ').trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** The steps recorded for a request (a resumed run starts from these). */
export function stepsFromDetail(steps: readonly DsrStepView[]): RunStep[] {
  return steps.map((s) => ({ no: s.no, name: s.name, state: s.status, rows: s.rows_affected }));
}

/**
 * The step list after a `dsr-progress` event: the list grows to the run's step count (with
 * placeholders for steps not yet named), and the event's step takes its name, state and rows.
 * Events for another request leave the list as it is.
 */
export function applyProgress(steps: readonly RunStep[], event: DsrProgressEvent, requestId: string): RunStep[] {
  if (event.request_id !== requestId || event.step < 1) {
    return [...steps];
  }
  const total = Math.max(event.steps, event.step, steps.length);
  const next: RunStep[] = [];
  for (let no = 1; no <= total; no += 1) {
    const known = steps.find((s) => s.no === no);
    next.push(known ? { ...known } : { no, name: '', state: 'pending', rows: 0 });
  }
  const target = next[event.step - 1];
  if (!target) return next;
  target.name = event.name;
  target.state = event.state;
  target.rows = event.state === 'done' ? event.rows : target.rows;
  return next;
}

/** Steps finished (done or skipped) out of all, for the progress bar. */
export function runProgress(steps: readonly RunStep[]): { done: number; total: number } {
  return {
    done: steps.filter((s) => s.state === 'done' || s.state === 'skipped').length,
    total: steps.length,
  };
}

// ---------------------------------------------------------------- forms

/** Today as `YYYY-MM-DD` in UTC (the core counts days in UTC). */
export function isoDay(date: Date = new Date()): string {
  return date.toISOString().slice(0, 10);
}

/** `YYYY-MM-DD` of `days` days before `date` (UTC). */
export function daysBefore(days: number, date: Date = new Date()): string {
  return isoDay(new Date(date.getTime() - days * DAY_MS));
}

/** Whether `text` is a real calendar date written `YYYY-MM-DD`. */
export function isCalendarDate(text: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  return date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d;
}

export interface NewRequestForm {
  kind: '' | DsrKind;
  subject: string;
  /** `YYYY-MM-DD`, or '' for today. */
  receivedOn: string;
}

export type FormErrors<K extends string> = Partial<Record<K, string>>;

/** What is wrong with the new-request form, by field (empty when it may be sent). */
export function validateNewRequest(
  form: NewRequestForm,
  today: string = isoDay(),
): FormErrors<'kind' | 'subject' | 'receivedOn'> {
  const errors: FormErrors<'kind' | 'subject' | 'receivedOn'> = {};
  if (form.kind === '') {
    errors.kind = 'Choose the right the subject exercises.';
  }
  const subject = form.subject.trim();
  if (subject === '') {
    errors.subject = 'Enter the subject’s username or email address.';
  } else if (subject.includes('@') && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(subject)) {
    errors.subject = 'That email address does not look complete.';
  } else if (!subject.includes('@') && /\s/.test(subject)) {
    errors.subject = 'A username has no spaces.';
  }
  const day = form.receivedOn.trim();
  if (day !== '') {
    if (!isCalendarDate(day)) {
      errors.receivedOn = 'Write the date as YYYY-MM-DD, for example 2026-01-31.';
    } else if (day > today) {
      errors.receivedOn = 'The request cannot have been received in the future.';
    }
  }
  return errors;
}

/** How the subject is named: an email address when it contains “@”, else a username. */
export function subjectKind(subject: string): 'email' | 'username' {
  return subject.includes('@') ? 'email' : 'username';
}

/** The reason limit of the core (extensions, rejections, withdrawals, holds). */
export const MAX_REASON = 500;

/** What is wrong with a reason ('' when it is fine). */
export function reasonProblem(reason: string): string {
  const r = reason.trim();
  if (r === '') return 'Give a reason; it is recorded with the request and in the audit log.';
  if ([...r].length > MAX_REASON) return `A reason is at most ${MAX_REASON} characters.`;
  return '';
}

/** A verification code as typed: ten letters or digits, dashes and spaces aside. */
export function codeProblem(code: string): string {
  const compact = code.replace(/[\s-]/g, '');
  if (compact === '') return 'Enter the code the subject gave you.';
  if (!/^[0-9A-Za-z]{10}$/.test(compact)) return 'A code has ten letters and digits, like K7QX2-MPA9D.';
  return '';
}

/** `1536` → "1.5 KiB". */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value >= 100 ? 0 : 1)} ${units[unit]}`;
}

/** Which run options a kind needs. */
export function runNeeds(kind: string): 'folder' | 'comments' | 'corrections' | 'none' {
  switch (kind) {
    case 'access':
    case 'portability':
      return 'folder';
    case 'erasure':
      return 'comments';
    case 'rectification':
      return 'corrections';
    default:
      return 'none';
  }
}
