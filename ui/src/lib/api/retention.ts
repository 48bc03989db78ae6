import { call } from './ipc';
import type {
  RetentionPlanItemView,
  RetentionPolicyChange,
  RetentionPolicyView,
  RetentionRunView,
} from './types';

/** Every retention policy, in the order a run applies them, with the rules a change must keep. */
export function retentionPolicies(): Promise<RetentionPolicyView[]> {
  return call<RetentionPolicyView[]>('retention_policies');
}

/** Changes one policy (absent values stay); refused with the core's reason if invalid. */
export function retentionSetPolicy(req: RetentionPolicyChange): Promise<RetentionPolicyView> {
  return call<RetentionPolicyView>('retention_set_policy', { req });
}

/** The dry run: per policy, what is due now and what holds keep back. Changes nothing. */
export function retentionPlan(): Promise<RetentionPlanItemView[]> {
  return call<RetentionPlanItemView[]>('retention_plan');
}

/**
 * Applies the enabled policies now (or one category's); progress arrives as
 * `retention-progress` events. Rejected with `busy` while another console or worker runs them.
 */
export function retentionRun(req: { policy: string | null }): Promise<RetentionRunView> {
  return call<RetentionRunView>('retention_run', { req });
}

/**
 * Asks the run started from this console to stop after its current chunk; `retentionRun` then
 * rejects with `stopped`, and the next run resumes it.
 */
export function retentionStop(): Promise<void> {
  return call<void>('retention_stop');
}

/** Recent runs, newest first. */
export function retentionRuns(req: { limit: number | null }): Promise<RetentionRunView[]> {
  return call<RetentionRunView[]>('retention_runs', { req });
}
