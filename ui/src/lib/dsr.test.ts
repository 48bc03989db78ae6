import { describe, expect, it } from 'vitest';
import type { DsrProgressEvent } from './api/types';
import {
  applyProgress,
  codeProblem,
  daysBefore,
  dueLabel,
  formatBytes,
  isCalendarDate,
  isClosed,
  reasonProblem,
  runNeeds,
  runProgress,
  statusCopy,
  stepLabel,
  stepsFromDetail,
  subjectKind,
  toDsrQuery,
  validateNewRequest,
  type RunStep,
} from './dsr';

const NOW = new Date('2026-03-15T09:30:00Z');

function request(over: Partial<{ status: string; due_at: string; overdue: boolean; due_soon: boolean }>) {
  return {
    status: 'verifying' as const,
    due_at: '2026-04-15T09:30:00Z',
    overdue: false,
    due_soon: false,
    ...over,
  } as Parameters<typeof dueLabel>[0];
}

describe('deadline labels', () => {
  it('labels overdue requests with how late they are', () => {
    const late = dueLabel(request({ due_at: '2026-03-05T09:00:00Z', overdue: true }), NOW);
    expect(late).toEqual({ label: 'Overdue by 10 days', tone: 'danger', state: 'overdue' });
    const justLate = dueLabel(request({ due_at: '2026-03-15T08:00:00Z', overdue: true }), NOW);
    expect(justLate.label).toBe('Overdue');
    const oneDay = dueLabel(request({ due_at: '2026-03-14T08:00:00Z', overdue: true }), NOW);
    expect(oneDay.label).toBe('Overdue by 1 day');
  });

  it('labels requests due within a week with the days left', () => {
    expect(dueLabel(request({ due_at: '2026-03-18T09:30:00Z', due_soon: true }), NOW)).toEqual({
      label: 'Due in 3 days',
      tone: 'warning',
      state: 'due_soon',
    });
    expect(dueLabel(request({ due_at: '2026-03-15T20:00:00Z', due_soon: true }), NOW).label).toBe('Due in 1 day');
    expect(dueLabel(request({ due_at: '2026-03-15T09:30:00Z', due_soon: true }), NOW).label).toBe('Due today');
  });

  it('says nothing of open requests with time to spare, or of closed ones', () => {
    expect(dueLabel(request({}), NOW)).toEqual({ label: '', tone: 'neutral', state: 'on_time' });
    // A closed request is never overdue, whatever its date.
    const done = dueLabel(request({ status: 'completed', due_at: '2026-01-01T00:00:00Z', overdue: true }), NOW);
    expect(done.state).toBe('closed');
    expect(done.label).toBe('');
  });

  it('names every status with a tone, and knows the closed ones', () => {
    expect(statusCopy('in_progress')).toEqual({ label: 'In progress', tone: 'warning' });
    expect(statusCopy('rejected').tone).toBe('danger');
    expect(statusCopy('mystery')).toEqual({ label: 'mystery', tone: 'neutral' });
    expect(['completed', 'rejected', 'withdrawn'].every(isClosed)).toBe(true);
    expect(['received', 'verifying', 'verified', 'in_progress'].some(isClosed)).toBe(false);
  });

  it('builds the dsr_list query from the filters', () => {
    expect(toDsrQuery({ status: '', kind: '', overdue: false, dueSoon: false })).toEqual({
      status: null,
      kind: null,
      overdue: false,
      due_soon: false,
    });
    expect(toDsrQuery({ status: 'verified', kind: 'erasure', overdue: true, dueSoon: true })).toEqual({
      status: 'verified',
      kind: 'erasure',
      overdue: true,
      due_soon: true,
    });
  });
});

const ID = 'req-1';

function event(step: number, state: DsrProgressEvent['state'], over: Partial<DsrProgressEvent> = {}): DsrProgressEvent {
  return { request_id: ID, step, steps: 4, name: `step_${step}`, state, rows: 0, ...over };
}

describe('run progress', () => {
  it('grows the list to the plan on the first event, with placeholders', () => {
    const steps = applyProgress([], event(1, 'running'), ID);
    expect(steps.map((s) => [s.no, s.name, s.state])).toEqual([
      [1, 'step_1', 'running'],
      [2, '', 'pending'],
      [3, '', 'pending'],
      [4, '', 'pending'],
    ]);
    expect(stepLabel(steps[1]!.name, 2)).toBe('Step 2');
  });

  it('moves each step from running to done with its rows', () => {
    let steps: RunStep[] = [];
    steps = applyProgress(steps, event(1, 'running'), ID);
    steps = applyProgress(steps, event(1, 'done', { rows: 12 }), ID);
    steps = applyProgress(steps, event(2, 'running'), ID);
    expect(steps[0]).toEqual({ no: 1, name: 'step_1', state: 'done', rows: 12 });
    expect(steps[1]!.state).toBe('running');
    expect(runProgress(steps)).toEqual({ done: 1, total: 4 });
    steps = applyProgress(steps, event(2, 'failed', { rows: 99 }), ID);
    expect(steps[1]).toEqual({ no: 2, name: 'step_2', state: 'failed', rows: 0 });
  });

  it('resumes from the steps already recorded', () => {
    const recorded = stepsFromDetail([
      { no: 1, name: 'revoke_sessions', status: 'done', rows_affected: 2, started_at: null, finished_at: null, error: null },
      { no: 2, name: 'delete_auth_data', status: 'pending', rows_affected: 0, started_at: null, finished_at: null, error: null },
    ]);
    const steps = applyProgress(recorded, event(2, 'running', { steps: 2, name: 'delete_auth_data' }), ID);
    expect(steps.map((s) => s.state)).toEqual(['done', 'running']);
    expect(steps[0]!.rows).toBe(2);
    expect(stepLabel(steps[0]!.name, 1)).toBe('End the subject’s sessions');
    expect(stepLabel('write_html', 3)).toBe('Write html');
  });

  it('ignores events of another request, and does not change the list it was given', () => {
    const before = applyProgress([], event(1, 'running'), ID);
    const after = applyProgress(before, event(1, 'done', { request_id: 'other' }), ID);
    expect(after).toEqual(before);
    applyProgress(before, event(1, 'done'), ID);
    expect(before[0]!.state).toBe('running');
  });
});

describe('new request form', () => {
  const today = '2026-03-15';
  const ok = { kind: 'erasure' as const, subject: 'anna.smith', receivedOn: '' };

  it('accepts a username or an email, today or an earlier day', () => {
    expect(validateNewRequest(ok, today)).toEqual({});
    expect(validateNewRequest({ ...ok, subject: ' anna@example.org ' }, today)).toEqual({});
    expect(validateNewRequest({ ...ok, receivedOn: '2026-02-01' }, today)).toEqual({});
    expect(validateNewRequest({ ...ok, receivedOn: today }, today)).toEqual({});
  });

  it('needs a kind and a subject', () => {
    const errors = validateNewRequest({ kind: '', subject: '  ', receivedOn: '' }, today);
    expect(Object.keys(errors).sort()).toEqual(['kind', 'subject']);
    expect(validateNewRequest({ ...ok, subject: 'anna smith' }, today).subject).toMatch(/no spaces/);
    expect(validateNewRequest({ ...ok, subject: 'anna@' }, today).subject).toMatch(/email/);
  });

  it('refuses malformed, impossible and future dates', () => {
    expect(validateNewRequest({ ...ok, receivedOn: '15/03/2026' }, today).receivedOn).toMatch(/YYYY-MM-DD/);
    expect(validateNewRequest({ ...ok, receivedOn: '2026-02-30' }, today).receivedOn).toMatch(/YYYY-MM-DD/);
    expect(validateNewRequest({ ...ok, receivedOn: '2026-03-16' }, today).receivedOn).toMatch(/future/);
  });

  it('knows calendar dates and counts days back in UTC', () => {
    expect(isCalendarDate('2024-02-29')).toBe(true);
    expect(isCalendarDate('2025-02-29')).toBe(false);
    expect(isCalendarDate('2026-13-01')).toBe(false);
    expect(daysBefore(40, NOW)).toBe('2026-02-03');
    expect(subjectKind('a@b.c')).toBe('email');
    expect(subjectKind('anna')).toBe('username');
  });

  it('checks reasons and codes as the core does', () => {
    expect(reasonProblem('  ')).toMatch(/reason/);
    expect(reasonProblem('x'.repeat(501))).toMatch(/500/);
    expect(reasonProblem('Litigation pending')).toBe('');
    expect(codeProblem('')).toMatch(/Enter/);
    expect(codeProblem('k7qx2 mpa9d')).toBe('');
    expect(codeProblem('K7QX2-MPA9')).toMatch(/ten/);
  });

  it('names what a run needs and formats sizes', () => {
    expect(runNeeds('access')).toBe('folder');
    expect(runNeeds('portability')).toBe('folder');
    expect(runNeeds('erasure')).toBe('comments');
    expect(runNeeds('rectification')).toBe('corrections');
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(5 * 1024 * 1024)).toBe('5.0 MiB');
  });
});
