import type { AppStatus, Me } from './api/types';

export type Phase =
  | 'booting'
  | 'unavailable'
  | 'setup'
  | 'login'
  | 'locked'
  | 'change-password'
  | 'enrol-mfa'
  | 'console';

/** Which top-level screen to show for a given state. */
export function phaseFor(
  booting: boolean,
  status: AppStatus | null,
  me: Me | null,
  locked = false,
): Phase {
  if (booting) {
    return 'booting';
  }
  if (status === null) {
    return 'unavailable';
  }
  if (!status.initialised) {
    return 'setup';
  }
  if (locked) {
    return 'locked';
  }
  if (me === null) {
    return 'login';
  }
  if (me.must_change_password) {
    return 'change-password';
  }
  // The [auth] require_mfa policy: the core refuses everything else until MFA is on.
  if (me.must_enrol_mfa) {
    return 'enrol-mfa';
  }
  return 'console';
}
