import { call } from './ipc';
import type { AuditPage, AuditQuery, ChainReport } from './types';

/** Audit entries, newest first; page back with `before_seq`. */
export function auditList(req: AuditQuery): Promise<AuditPage> {
  return call<AuditPage>('audit_list', { req });
}

/** Recomputes the hash chain over the whole log. */
export function auditVerify(): Promise<ChainReport> {
  return call<ChainReport>('audit_verify');
}
