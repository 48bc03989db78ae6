import { call } from './ipc';
import type {
  DsrCode,
  DsrCreated,
  DsrCreateRequest,
  DsrDetailView,
  DsrListQuery,
  DsrRunRequest,
  DsrRunResult,
  DsrView,
  HoldView,
} from './types';

/** The inbox: requests matching the filters, the most urgent first. */
export function dsrList(req: DsrListQuery): Promise<DsrView[]> {
  return call<DsrView[]>('dsr_list', { req });
}

/** Records a request; the verification code comes back once. */
export function dsrCreate(req: DsrCreateRequest): Promise<DsrCreated> {
  return call<DsrCreated>('dsr_create', { req });
}

export function dsrShow(req: { id: string }): Promise<DsrDetailView> {
  return call<DsrDetailView>('dsr_show', { req });
}

/** Checks the code the subject gave; a wrong one uses up an attempt. */
export function dsrVerifyCode(req: { id: string; code: string }): Promise<DsrView> {
  return call<DsrView>('dsr_verify_code', { req });
}

/** Verifies the subject with their own access token (it must belong to the subject). */
export function dsrVerifyToken(req: { id: string; token: string }): Promise<DsrView> {
  return call<DsrView>('dsr_verify_token', { req });
}

/** Issues a new code (the old one stops working); shown once. */
export function dsrReissueCode(req: { id: string }): Promise<DsrCode> {
  return call<DsrCode>('dsr_reissue_code', { req });
}

export function dsrExtend(req: { id: string; months: number; reason: string }): Promise<DsrView> {
  return call<DsrView>('dsr_extend', { req });
}

export function dsrReject(req: { id: string; reason: string }): Promise<DsrView> {
  return call<DsrView>('dsr_reject', { req });
}

export function dsrWithdraw(req: { id: string; reason: string }): Promise<DsrView> {
  return call<DsrView>('dsr_withdraw', { req });
}

/** Runs a verified request; steps arrive as `dsr-progress` events meanwhile. */
export function dsrRun(req: DsrRunRequest): Promise<DsrRunResult> {
  return call<DsrRunResult>('dsr_run', { req });
}

/**
 * Asks this console's run of a request to stop at its next step (the step in flight is rolled
 * back); `dsrRun` then rejects with `stopped`, and running the request again resumes it.
 */
export function dsrStop(req: { id: string }): Promise<void> {
  return call<void>('dsr_stop', { req });
}

/** The folder exports go to by default (Downloads, else home). */
export function dsrDefaultExportDir(): Promise<string> {
  return call<string>('dsr_default_export_dir');
}

export function holdsList(req: { include_released: boolean }): Promise<HoldView[]> {
  return call<HoldView[]>('holds_list', { req });
}

export function holdPlace(req: { username: string; reason: string }): Promise<HoldView> {
  return call<HoldView>('hold_place', { req });
}

/** Places a legal hold on an incident (`vigil hold place --incident`). */
export function incidentHoldPlace(req: { incident_id: string; reason: string }): Promise<HoldView> {
  return call<HoldView>('incident_hold_place', { req });
}

export function holdRelease(req: { id: string }): Promise<void> {
  return call<void>('hold_release', { req });
}
