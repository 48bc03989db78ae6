// Security incidents: labels and tones, the queue's filters as a query, which actions an
// incident offers in its current state, its evidence merged with the activity around it, and
// the checks of the forms (the core checks everything again).
import type {
  ActivityView,
  BlockView,
  ChartKind,
  CommentView,
  IncidentDetailView,
  IncidentKind,
  IncidentListQuery,
  IncidentStatus,
  IncidentTimelineView,
  IncidentView,
  RestrictionView,
  Severity,
} from './api/types';
import type { Tone } from './dsr';

// ---------------------------------------------------------------- labels

/** Most severe first: the queue's order. */
export const SEVERITIES: readonly Severity[] = ['critical', 'high', 'medium', 'low'];

const SEVERITY_COPY: Record<Severity, { label: string; tone: Tone }> = {
  critical: { label: 'Critical', tone: 'danger' },
  high: { label: 'High', tone: 'warning' },
  medium: { label: 'Medium', tone: 'info' },
  low: { label: 'Low', tone: 'neutral' },
};

export function severityCopy(severity: string): { label: string; tone: Tone } {
  return SEVERITY_COPY[severity as Severity] ?? { label: severity, tone: 'neutral' };
}

/** 0 for critical … 3 for low; unknown severities last. */
export function severityRank(severity: string): number {
  const rank = SEVERITIES.indexOf(severity as Severity);
  return rank === -1 ? SEVERITIES.length : rank;
}

/** The queue's order: most severe first, then oldest (as the core returns it). */
export function compareIncidents(
  a: Pick<IncidentView, 'severity' | 'created_at' | 'id'>,
  b: Pick<IncidentView, 'severity' | 'created_at' | 'id'>,
): number {
  return (
    severityRank(a.severity) - severityRank(b.severity) ||
    Date.parse(a.created_at) - Date.parse(b.created_at) ||
    a.id.localeCompare(b.id)
  );
}

export const INCIDENT_KINDS: readonly IncidentKind[] = [
  'credential_stuffing',
  'rate_limit_exceeded',
  'suspicious_activity',
  'malicious_content',
  'suspicious_content',
];

const KIND_LABELS: Record<IncidentKind, string> = {
  credential_stuffing: 'Credential stuffing',
  rate_limit_exceeded: 'Rate limit exceeded',
  suspicious_activity: 'Suspicious activity',
  malicious_content: 'Malicious content',
  suspicious_content: 'Suspicious content',
};

export function incidentKindLabel(kind: string): string {
  return KIND_LABELS[kind as IncidentKind] ?? humanWords(kind);
}

export const INCIDENT_STATUSES: readonly IncidentStatus[] = ['open', 'investigating', 'resolved', 'dismissed'];

const STATUS_COPY: Record<IncidentStatus, { label: string; tone: Tone }> = {
  open: { label: 'Open', tone: 'info' },
  investigating: { label: 'Investigating', tone: 'accent' },
  resolved: { label: 'Resolved', tone: 'success' },
  dismissed: { label: 'Dismissed', tone: 'neutral' },
};

export function incidentStatusCopy(status: string): { label: string; tone: Tone } {
  return STATUS_COPY[status as IncidentStatus] ?? { label: humanWords(status), tone: 'neutral' };
}

/** Open or investigating: the incident is still being reviewed. */
export function isActive(status: string): boolean {
  return status === 'open' || status === 'investigating';
}

/** The account's state next to the incident: suspended is the one that matters. */
export function accountCopy(status: string | null): { label: string; tone: Tone } | null {
  if (status === null) return null;
  if (status === 'active') return { label: 'Account active', tone: 'success' };
  if (status === 'suspended') return { label: 'Account suspended', tone: 'danger' };
  return { label: `Account ${humanWords(status).toLowerCase()}`, tone: 'warning' };
}

/** A block's or restriction's state. */
export function measureStateCopy(state: string): { label: string; tone: Tone } {
  switch (state) {
    case 'active':
      return { label: 'In force', tone: 'warning' };
    case 'lifted':
      return { label: 'Lifted', tone: 'neutral' };
    case 'expired':
      return { label: 'Expired', tone: 'neutral' };
    default:
      return { label: humanWords(state), tone: 'neutral' };
  }
}

const RESTRICTION_LABELS: Record<RestrictionView['kind'], string> = {
  suspension: 'Account suspended',
  step_up: 'Step-up at next sign-in',
  comment: 'Commenting restricted',
  upload: 'Uploads restricted',
};

export function restrictionLabel(kind: string): string {
  return RESTRICTION_LABELS[kind as RestrictionView['kind']] ?? humanWords(kind);
}

const TIMELINE_LABELS: Record<string, string> = {
  suspend_account: 'Account suspended',
  revoke_sessions: 'Sessions revoked',
  notify_user: 'Account holder notified',
  block_ip: 'Source address blocked',
  require_step_up: 'Step-up required at next sign-in',
  restrict_comment: 'Commenting restricted',
  restrict_upload: 'Uploads restricted',
  manual_review: 'Queued for review',
  assign: 'Assigned',
  confirm: 'Confirmed',
  dismiss: 'Dismissed as a false positive',
  lift_suspension: 'Suspension lifted',
  extend_suspension: 'Suspension extended',
  lift_block: 'IP block lifted',
  extend_block: 'IP block extended',
  lift_restrictions: 'Restrictions lifted',
  remove_comment: 'Comment removed',
  warn: 'Warning sent to the account holder',
  note: 'Note',
};

/** `lift_block` → "IP block lifted"; unknown actions are humanised. */
export function timelineLabel(action: string): string {
  return TIMELINE_LABELS[action] ?? humanWords(action);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What a timeline entry's details say, for people: the moderator's words and the figures. */
export function timelineNote(entry: Pick<IncidentTimelineView, 'details'>): { reason: string | null; facts: string } {
  let value: unknown;
  try {
    value = JSON.parse(entry.details);
  } catch {
    return { reason: null, facts: entry.details };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { reason: null, facts: '' };
  }
  const fields = value as Record<string, unknown>;
  const reason = typeof fields.reason === 'string' && fields.reason.trim() !== '' ? fields.reason : null;
  // Ids of the blocks and restrictions placed say nothing to a person: they are left out.
  const facts = Object.entries(fields)
    .filter(([key, v]) => key !== 'reason' && v !== null && v !== undefined && typeof v !== 'object')
    .filter(([, v]) => !(typeof v === 'string' && UUID.test(v)))
    .map(([key, v]) => `${humanWords(key).toLowerCase()}: ${String(v)}`)
    .join(' · ');
  return { reason, facts };
}

/** How an entry came about: Vigil's automated response, or an operator's action. */
export function timelineActor(entry: Pick<IncidentTimelineView, 'automated' | 'actor'>): string {
  if (entry.automated) return 'automatic';
  return entry.actor ?? 'unknown operator';
}

function humanWords(identifier: string): string {
  const words = identifier.replace(/[_.:-]+/g, ' ').trim();
  return words === '' ? identifier : words.charAt(0).toUpperCase() + words.slice(1);
}

// ---------------------------------------------------------------- queue filters

/** Queue filters as the form holds them ('' = any; a status of '' = open and investigating). */
export interface IncidentFilters {
  status: '' | IncidentStatus;
  severity: '' | Severity;
  kind: '' | IncidentKind;
  mine: boolean;
}

export const EMPTY_INCIDENT_FILTERS: IncidentFilters = { status: '', severity: '', kind: '', mine: false };

export function toIncidentQuery(filters: IncidentFilters): IncidentListQuery {
  return {
    status: filters.status === '' ? null : filters.status,
    severity: filters.severity === '' ? null : filters.severity,
    kind: filters.kind === '' ? null : filters.kind,
    mine: filters.mine,
  };
}

/** The form's state for a query; values the form does not offer become "any". */
export function fromIncidentQuery(query: IncidentListQuery): IncidentFilters {
  const pick = <T extends string>(value: string | null, allowed: readonly T[]): '' | T =>
    value !== null && (allowed as readonly string[]).includes(value) ? (value as T) : '';
  return {
    status: pick(query.status, INCIDENT_STATUSES),
    severity: pick(query.severity, SEVERITIES),
    kind: pick(query.kind, INCIDENT_KINDS),
    mine: query.mine,
  };
}

export function isFiltered(filters: IncidentFilters): boolean {
  return filters.status !== '' || filters.severity !== '' || filters.kind !== '' || filters.mine;
}

// ---------------------------------------------------------------- actions

export type ActionId =
  | 'assign'
  | 'confirm'
  | 'dismiss'
  | 'lift-suspension'
  | 'extend-suspension'
  | 'lift-block'
  | 'extend-block'
  | 'lift-restrictions'
  | 'warn'
  | 'note';

export interface ActionSpec {
  id: ActionId;
  label: string;
  testid: string;
  /** How the button looks: the main next step, an ordinary one, or one that undoes protection. */
  emphasis: 'primary' | 'default' | 'danger';
  /** What the operator is asked for first: nothing, a number of hours, or a note's text. */
  input: 'none' | 'hours' | 'note';
  /** Asked before a destructive action (the confirm dialog). */
  confirm: { title: string; message: string; confirmLabel: string } | null;
}

const active = <T extends { state: string }>(items: readonly T[]): T[] => items.filter((i) => i.state === 'active');

/** Whether the account is suspended now (by this incident or another). */
export function isSuspended(detail: Pick<IncidentDetailView, 'account_status' | 'restrictions'>): boolean {
  return (
    detail.account_status === 'suspended' ||
    detail.restrictions.some((r) => r.kind === 'suspension' && r.state === 'active')
  );
}

/**
 * The actions the incident offers now, in button order. Operators who may not act
 * (`incidents_act`) get none; the core refuses them anyway.
 */
export function availableActions(
  detail: Pick<IncidentDetailView, 'incident' | 'account_status' | 'blocks' | 'restrictions'>,
  canAct: boolean,
): ActionSpec[] {
  if (!canAct) return [];
  const incident = detail.incident;
  const open = isActive(incident.status);
  const account = incident.user_id !== null;
  const suspended = account && isSuspended(detail);
  const blocks = active(detail.blocks);
  const restrictions = active(detail.restrictions).filter((r) => r.kind !== 'suspension');
  const who = incident.username ?? 'the account';
  const out: ActionSpec[] = [];
  const add = (spec: Omit<ActionSpec, 'testid'>) => out.push({ ...spec, testid: `incident-action-${spec.id}` });

  if (open && !incident.assigned_to_me) {
    add({ id: 'assign', label: 'Assign to me', emphasis: 'primary', input: 'none', confirm: null });
  }
  if (open) {
    add({
      id: 'confirm',
      label: 'Confirm',
      emphasis: incident.assigned_to_me ? 'primary' : 'default',
      input: 'none',
      confirm: null,
    });
    add({
      id: 'dismiss',
      label: 'Dismiss as false positive',
      emphasis: 'danger',
      input: 'none',
      confirm: {
        title: 'Dismiss as a false positive?',
        message:
          'The incident is closed as dismissed, every automated response still in force is lifted ' +
          '(suspension, address blocks, restrictions), and the rules that fired are recorded as feedback.',
        confirmLabel: 'Dismiss incident',
      },
    });
  }
  if (suspended) {
    add({
      id: 'lift-suspension',
      label: 'Lift suspension',
      emphasis: 'danger',
      input: 'none',
      confirm: {
        title: 'Lift the suspension?',
        message: `${who} can sign in and post again at once. The lift is recorded on the incident and in the audit log.`,
        confirmLabel: 'Lift suspension',
      },
    });
    add({ id: 'extend-suspension', label: 'Extend suspension', emphasis: 'default', input: 'hours', confirm: null });
  }
  if (blocks.length > 0) {
    const what = blocks.length === 1 ? `${blocks[0]?.ip ?? 'The address'} is` : `${blocks.length} addresses are`;
    add({
      id: 'lift-block',
      label: 'Lift IP block',
      emphasis: 'danger',
      input: 'none',
      confirm: {
        title: 'Lift the IP block?',
        message: `${what} let through again at once. The lift is recorded on the incident and in the audit log.`,
        confirmLabel: 'Lift IP block',
      },
    });
    add({ id: 'extend-block', label: 'Extend IP block', emphasis: 'default', input: 'hours', confirm: null });
  }
  if (account && restrictions.length > 0) {
    add({
      id: 'lift-restrictions',
      label: 'Lift restrictions',
      emphasis: 'danger',
      input: 'none',
      confirm: {
        title: 'Lift the restrictions?',
        message: `The step-up, commenting and upload restrictions this incident placed on ${who} end at once.`,
        confirmLabel: 'Lift restrictions',
      },
    });
  }
  if (account) {
    add({
      id: 'warn',
      label: 'Warn user',
      emphasis: 'default',
      input: 'none',
      confirm: {
        title: 'Warn the account holder?',
        message: `A warning about this incident is queued to ${who} through the platform.`,
        confirmLabel: 'Send warning',
      },
    });
  }
  add({ id: 'note', label: 'Add note', emphasis: 'default', input: 'note', confirm: null });
  return out;
}

/** The core's form of an action: `extend-block:24`, `remove-comment:<id>`, `assign`. */
export function actionString(id: ActionId | 'remove-comment', arg?: number | string): string {
  return arg === undefined ? id : `${id}:${arg}`;
}

/** A comment can be removed while it is public, shown and the operator may act. */
export function canRemoveComment(comment: Pick<CommentView, 'removed_at'>, canAct: boolean): boolean {
  return canAct && comment.removed_at === null;
}

/** Hours a suspension or block can be extended by, as offered. */
export const EXTEND_HOURS: readonly { hours: number; label: string }[] = [
  { hours: 24, label: '24 hours' },
  { hours: 72, label: '3 days' },
  { hours: 168, label: '7 days' },
  { hours: 720, label: '30 days' },
];

/** The core's limits: hours from 1 to 8760 (a year), reasons up to 2,000 bytes. */
export const MAX_HOURS = 8760;
export const MAX_REASON_BYTES = 2000;

/** What is wrong with hours typed into a form ('' when fine; empty is fine when optional). */
export function hoursProblem(text: string, optional = false): string {
  const t = text.trim();
  if (t === '') return optional ? '' : 'Enter a number of hours.';
  if (!/^\d+$/.test(t)) return 'Hours are a whole number, like 24.';
  const n = Number(t);
  if (n < 1 || n > MAX_HOURS) return `From 1 to ${MAX_HOURS} hours (a year).`;
  return '';
}

/** What is wrong with a reason or note ('' when fine). */
export function reasonProblem(text: string, required: boolean): string {
  const t = text.trim();
  if (t === '') return required ? 'Write a reason; it is kept on the incident’s timeline.' : '';
  if (new TextEncoder().encode(t).length > MAX_REASON_BYTES) return 'At most 2,000 characters.';
  return '';
}

/** A rough check of an IPv4 or IPv6 address (the core parses it properly). */
export function ipProblem(text: string): string {
  const t = text.trim();
  if (t === '') return 'Enter the address to block.';
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(t);
  if (v4) return v4.slice(1).every((p) => Number(p) <= 255) ? '' : 'Each part of an IPv4 address is 0 to 255.';
  if (t.includes(':') && /^[0-9a-fA-F:.]+$/.test(t)) return '';
  return 'That is not an IPv4 or IPv6 address.';
}

// ---------------------------------------------------------------- evidence

/** A row of the evidence timeline: an activity record, a comment, or evidence found nowhere else. */
export interface EvidenceRow {
  id: string;
  at: string;
  /** Part of the incident's evidence (highlighted). */
  evidence: boolean;
  /** The rules the row fired. */
  rules: string[];
  activity: ActivityView | null;
  comment: CommentView | null;
}

/**
 * The incident's evidence merged with the account's activity around it, oldest first: each
 * activity record (with its comment, when the record is the comment's submission), each comment
 * not submitted through a listed record, and each piece of evidence that is in neither.
 */
export function evidenceTimeline(
  detail: Pick<IncidentDetailView, 'evidence' | 'activity' | 'comments'>,
): EvidenceRow[] {
  const rulesOf = new Map<string, string[]>();
  for (const e of detail.evidence) {
    if (e.ref_id === null) continue;
    const rules = rulesOf.get(e.ref_id) ?? [];
    if (e.rule !== null && !rules.includes(e.rule)) rules.push(e.rule);
    rulesOf.set(e.ref_id, rules);
  }
  const comments = new Map(detail.comments.map((c) => [c.id, c]));
  const rows: EvidenceRow[] = [];
  const seen = new Set<string>();
  for (const a of detail.activity) {
    const comment = comments.get(a.id) ?? null;
    rows.push({
      id: a.id,
      at: a.at,
      evidence: a.evidence || rulesOf.has(a.id),
      rules: rulesOf.get(a.id) ?? [],
      activity: a,
      comment,
    });
    seen.add(a.id);
  }
  for (const c of detail.comments) {
    if (seen.has(c.id)) continue;
    rows.push({ id: c.id, at: c.at, evidence: true, rules: rulesOf.get(c.id) ?? [], activity: null, comment: c });
    seen.add(c.id);
  }
  for (const e of detail.evidence) {
    const key = e.ref_id ?? `${e.kind}:${e.added_at}:${e.rule ?? ''}`;
    if (seen.has(key)) continue;
    rows.push({ id: key, at: e.added_at, evidence: true, rules: rulesOf.get(key) ?? (e.rule ? [e.rule] : []), activity: null, comment: null });
    seen.add(key);
  }
  return rows.sort((x, y) => Date.parse(x.at) - Date.parse(y.at) || x.id.localeCompare(y.id));
}

/** Blocks and restrictions in force, for the header's summary. */
export function measuresInForce(detail: Pick<IncidentDetailView, 'blocks' | 'restrictions'>): {
  blocks: BlockView[];
  restrictions: RestrictionView[];
} {
  return { blocks: active(detail.blocks), restrictions: active(detail.restrictions) };
}

// ---------------------------------------------------------------- dashboard

export const CHART_PERIODS: readonly number[] = [7, 30, 90];

export interface ChartSpec {
  kind: ChartKind;
  title: string;
  permission: string;
}

/** The dashboard's charts in order, with the permission each needs. */
export const CHARTS: readonly ChartSpec[] = [
  { kind: 'incidents_by_severity', title: 'Incidents by severity', permission: 'incidents_read' },
  { kind: 'activity_volume', title: 'Activity and rate-limit violations', permission: 'incidents_read' },
  { kind: 'top_rules', title: 'Most frequent detection rules', permission: 'incidents_read' },
  { kind: 'dsr_status', title: 'Data-subject requests', permission: 'dsr_read' },
];

/** The charts `permissions` allow. */
export function visibleCharts(permissions: readonly string[]): ChartSpec[] {
  return CHARTS.filter((c) => permissions.includes(c.permission));
}
