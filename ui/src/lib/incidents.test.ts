import { describe, expect, it } from 'vitest';
import type {
  ActivityView,
  BlockView,
  CommentView,
  IncidentDetailView,
  IncidentView,
  RestrictionView,
} from './api/types';
import {
  accountCopy,
  actionString,
  availableActions,
  canRemoveComment,
  compareIncidents,
  EMPTY_INCIDENT_FILTERS,
  evidenceTimeline,
  fromIncidentQuery,
  hoursProblem,
  incidentKindLabel,
  incidentStatusCopy,
  ipProblem,
  isFiltered,
  measureStateCopy,
  reasonProblem,
  severityCopy,
  severityRank,
  timelineActor,
  timelineLabel,
  timelineNote,
  toIncidentQuery,
  visibleCharts,
} from './incidents';

function incident(over: Partial<IncidentView> = {}): IncidentView {
  return {
    id: 'i-1',
    kind: 'credential_stuffing',
    severity: 'critical',
    status: 'open',
    username: 'stuffed.victim',
    user_id: 'u-1',
    assignee: null,
    assigned_to_me: false,
    summary: '40 sign-in attempts on 12 accounts from one address in 10 min, 38 failed',
    created_at: '2026-03-15T09:00:00Z',
    updated_at: '2026-03-15T09:00:00Z',
    evidence_count: 40,
    ...over,
  };
}

function block(over: Partial<BlockView> = {}): BlockView {
  return {
    id: 'b-1',
    ip: '198.51.100.23',
    reason: 'credential stuffing',
    incident_id: 'i-1',
    created_at: '2026-03-15T09:00:00Z',
    expires_at: '2026-03-16T09:00:00Z',
    lifted_at: null,
    state: 'active',
    ...over,
  };
}

function restriction(over: Partial<RestrictionView> = {}): RestrictionView {
  return {
    id: 'r-1',
    user_id: 'u-1',
    kind: 'suspension',
    reason: 'critical incident',
    incident_id: 'i-1',
    created_at: '2026-03-15T09:00:00Z',
    expires_at: null,
    lifted_at: null,
    state: 'active',
    ...over,
  };
}

function detail(over: Partial<IncidentDetailView> = {}): IncidentDetailView {
  return {
    incident: incident(),
    account_status: 'suspended',
    rules: [],
    evidence: [],
    timeline: [],
    activity: [],
    comments: [],
    blocks: [block()],
    restrictions: [restriction()],
    ...over,
  };
}

const ids = (d: IncidentDetailView, canAct = true) => availableActions(d, canAct).map((a) => a.id);

describe('labels and order', () => {
  it('orders severities most severe first, with a tone for each', () => {
    expect(['low', 'critical', 'medium', 'high'].sort((a, b) => severityRank(a) - severityRank(b))).toEqual([
      'critical',
      'high',
      'medium',
      'low',
    ]);
    expect(severityRank('unheard-of')).toBe(4);
    expect(severityCopy('critical')).toEqual({ label: 'Critical', tone: 'danger' });
    expect(severityCopy('high').tone).toBe('warning');
    expect(severityCopy('odd')).toEqual({ label: 'odd', tone: 'neutral' });
  });

  it('sorts the queue by severity, then oldest first', () => {
    const rows = [
      incident({ id: 'c', severity: 'high', created_at: '2026-03-15T10:00:00Z' }),
      incident({ id: 'a', severity: 'low', created_at: '2026-03-01T10:00:00Z' }),
      incident({ id: 'b', severity: 'high', created_at: '2026-03-14T10:00:00Z' }),
      incident({ id: 'd', severity: 'critical', created_at: '2026-03-15T11:00:00Z' }),
    ];
    expect([...rows].sort(compareIncidents).map((r) => r.id)).toEqual(['d', 'b', 'c', 'a']);
  });

  it('names kinds, statuses, accounts, measures and timeline actions', () => {
    expect(incidentKindLabel('credential_stuffing')).toBe('Credential stuffing');
    expect(incidentKindLabel('new_kind')).toBe('New kind');
    expect(incidentStatusCopy('investigating')).toEqual({ label: 'Investigating', tone: 'accent' });
    expect(accountCopy('suspended')).toEqual({ label: 'Account suspended', tone: 'danger' });
    expect(accountCopy(null)).toBeNull();
    expect(measureStateCopy('active').label).toBe('In force');
    expect(measureStateCopy('lifted').label).toBe('Lifted');
    expect(timelineLabel('block_ip')).toBe('Source address blocked');
    expect(timelineLabel('lift_block')).toBe('IP block lifted');
    expect(timelineLabel('something_new')).toBe('Something new');
  });

  it('says who took a timeline step, and what they wrote', () => {
    expect(timelineActor({ automated: true, actor: null })).toBe('automatic');
    expect(timelineActor({ automated: false, actor: 'mod-morgan' })).toBe('mod-morgan');
    expect(timelineNote({ details: '{"reason":"confirmed with the owner","blocks":1}' })).toEqual({
      reason: 'confirmed with the owner',
      facts: 'blocks: 1',
    });
    expect(
      timelineNote({ details: '{"block":"01a209ca-e293-70f4-8aef-f8935546a617","hours":24}' }),
    ).toEqual({ reason: null, facts: 'hours: 24' });
    expect(timelineNote({ details: '{}' })).toEqual({ reason: null, facts: '' });
    expect(timelineNote({ details: 'not json' })).toEqual({ reason: null, facts: 'not json' });
  });
});

describe('queue filters', () => {
  it('turns the form into the incidents_list query and back', () => {
    expect(toIncidentQuery(EMPTY_INCIDENT_FILTERS)).toEqual({ status: null, severity: null, kind: null, mine: false });
    const filters = { status: 'resolved', severity: 'high', kind: 'malicious_content', mine: true } as const;
    expect(toIncidentQuery(filters)).toEqual({
      status: 'resolved',
      severity: 'high',
      kind: 'malicious_content',
      mine: true,
    });
    expect(fromIncidentQuery(toIncidentQuery(filters))).toEqual(filters);
    expect(fromIncidentQuery({ status: 'closed', severity: null, kind: 'spam', mine: false })).toEqual(
      EMPTY_INCIDENT_FILTERS,
    );
    expect(isFiltered(EMPTY_INCIDENT_FILTERS)).toBe(false);
    expect(isFiltered({ ...EMPTY_INCIDENT_FILTERS, mine: true })).toBe(true);
  });
});

describe('available actions', () => {
  it('offers everything that applies to an open critical incident with its measures in force', () => {
    expect(ids(detail())).toEqual([
      'assign',
      'confirm',
      'dismiss',
      'lift-suspension',
      'extend-suspension',
      'lift-block',
      'extend-block',
      'warn',
      'note',
    ]);
  });

  it('offers nothing to operators who may not act', () => {
    expect(ids(detail(), false)).toEqual([]);
  });

  it('drops assign once the incident is mine, and the review steps once it is closed', () => {
    const mine = detail({ incident: incident({ status: 'investigating', assigned_to_me: true }) });
    expect(ids(mine)).not.toContain('assign');
    expect(availableActions(mine, true).find((a) => a.id === 'confirm')?.emphasis).toBe('primary');
    const closed = detail({ incident: incident({ status: 'resolved' }) });
    expect(ids(closed)).not.toContain('confirm');
    expect(ids(closed)).not.toContain('dismiss');
    // Measures in force can still be lifted after the review.
    expect(ids(closed)).toContain('lift-block');
  });

  it('offers lifting and extending only what is in force', () => {
    const lifted = detail({
      account_status: 'active',
      blocks: [block({ state: 'lifted', lifted_at: '2026-03-15T10:00:00Z' })],
      restrictions: [restriction({ state: 'lifted' }), restriction({ id: 'r-2', kind: 'comment' })],
    });
    const offered = ids(lifted);
    expect(offered).not.toContain('lift-block');
    expect(offered).not.toContain('extend-block');
    expect(offered).not.toContain('lift-suspension');
    expect(offered).toContain('lift-restrictions');
  });

  it('offers no account actions for an incident without an account', () => {
    const anonymous = detail({
      incident: incident({ user_id: null, username: null }),
      account_status: null,
      restrictions: [],
    });
    expect(ids(anonymous)).toEqual(['assign', 'confirm', 'dismiss', 'lift-block', 'extend-block', 'note']);
  });

  it('asks before anything that undoes protection, and names the address', () => {
    const specs = availableActions(detail(), true);
    const confirmed = specs.filter((s) => s.confirm !== null).map((s) => s.id);
    expect(confirmed).toEqual(['dismiss', 'lift-suspension', 'lift-block', 'warn']);
    expect(specs.find((s) => s.id === 'lift-block')?.confirm?.message).toContain('198.51.100.23');
    expect(specs.find((s) => s.id === 'lift-block')?.testid).toBe('incident-action-lift-block');
    expect(specs.find((s) => s.id === 'extend-block')?.input).toBe('hours');
    expect(specs.find((s) => s.id === 'note')?.input).toBe('note');
  });

  it('writes actions the way the core parses them', () => {
    expect(actionString('assign')).toBe('assign');
    expect(actionString('extend-block', 24)).toBe('extend-block:24');
    expect(actionString('remove-comment', 'c-1')).toBe('remove-comment:c-1');
    expect(canRemoveComment({ removed_at: null }, true)).toBe(true);
    expect(canRemoveComment({ removed_at: '2026-03-15T10:00:00Z' }, true)).toBe(false);
    expect(canRemoveComment({ removed_at: null }, false)).toBe(false);
  });
});

describe('forms', () => {
  it('checks hours, reasons and addresses', () => {
    expect(hoursProblem('24')).toBe('');
    expect(hoursProblem('')).not.toBe('');
    expect(hoursProblem('', true)).toBe('');
    expect(hoursProblem('0')).toContain('8760');
    expect(hoursProblem('8761')).toContain('8760');
    expect(hoursProblem('1.5')).toContain('whole');
    expect(reasonProblem('  ', true)).not.toBe('');
    expect(reasonProblem('  ', false)).toBe('');
    expect(reasonProblem('x'.repeat(2001), false)).toContain('2,000');
    expect(ipProblem('198.51.100.23')).toBe('');
    expect(ipProblem('2001:db8::1')).toBe('');
    expect(ipProblem('300.1.1.1')).toContain('0 to 255');
    expect(ipProblem('example.org')).not.toBe('');
    expect(ipProblem('')).not.toBe('');
  });
});

describe('evidence timeline', () => {
  const activity = (id: string, at: string, evidence: boolean): ActivityView => ({
    id,
    at,
    username: 'stuffed.victim',
    kind: 'login',
    outcome: evidence ? 'failure' : 'success',
    reason: null,
    country: 'NL',
    user_agent: null,
    evidence,
  });
  const comment = (id: string, at: string): CommentView => ({
    id,
    at,
    text: 'win a prize http://bad.example',
    private: false,
    removed_at: null,
    removal_reason: null,
  });

  it('merges activity, comments and stray evidence in time order, evidence marked with its rules', () => {
    const rows = evidenceTimeline({
      activity: [
        activity('a2', '2026-03-15T09:05:00Z', true),
        activity('a1', '2026-03-15T09:00:00Z', false),
        activity('c1', '2026-03-15T09:10:00Z', true),
      ],
      comments: [comment('c1', '2026-03-15T09:10:00Z'), comment('c2', '2026-03-15T09:20:00Z')],
      evidence: [
        { kind: 'activity', ref_id: 'a2', rule: 'credential_stuffing', added_at: '2026-03-15T09:30:00Z' },
        { kind: 'comment', ref_id: 'c1', rule: 'url.malicious', added_at: '2026-03-15T09:30:00Z' },
        { kind: 'comment', ref_id: 'c2', rule: 'phishing_attempt', added_at: '2026-03-15T09:30:00Z' },
        { kind: 'activity', ref_id: 'gone', rule: 'multiple_ips', added_at: '2026-03-15T09:40:00Z' },
      ],
    });
    expect(rows.map((r) => r.id)).toEqual(['a1', 'a2', 'c1', 'c2', 'gone']);
    expect(rows.map((r) => r.evidence)).toEqual([false, true, true, true, true]);
    expect(rows[1]?.rules).toEqual(['credential_stuffing']);
    // The comment's submission carries the comment itself.
    expect(rows[2]?.activity?.id).toBe('c1');
    expect(rows[2]?.comment?.text).toContain('prize');
    expect(rows[3]?.activity).toBeNull();
    expect(rows[4]?.rules).toEqual(['multiple_ips']);
  });
});

describe('dashboard charts', () => {
  it('shows the data-subject request chart only to those who read requests', () => {
    const moderator = visibleCharts(['incidents_read', 'incidents_act']).map((c) => c.kind);
    expect(moderator).toEqual(['incidents_by_severity', 'activity_volume', 'top_rules']);
    const admin = visibleCharts(['incidents_read', 'dsr_read']).map((c) => c.kind);
    expect(admin).toContain('dsr_status');
    expect(visibleCharts([])).toEqual([]);
  });
});
