import { call } from './ipc';
import type { AuditPage, AuditQuery, ChainReport, SecurityEventRow, SecurityEventsQuery } from './types';

/** Audit entries, newest first; page back with `before_seq`. */
export function auditList(req: AuditQuery): Promise<AuditPage> {
  return call<AuditPage>('audit_list', { req });
}

/** Recomputes the hash chain over the whole log. */
export function auditVerify(): Promise<ChainReport> {
  return call<ChainReport>('audit_verify');
}

/** Security events (denials, token failures, refreshes, sign-outs, expiries, locks), newest first. */
export function securityEventsList(req: SecurityEventsQuery): Promise<SecurityEventRow[]> {
  return call<SecurityEventRow[]>('security_events_list', { req });
}
