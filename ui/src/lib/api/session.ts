import { call } from './ipc';
import type { LoginRequest, LoginResult, Me, SessionStatus } from './types';

export function login(req: LoginRequest): Promise<LoginResult> {
  return call<LoginResult>('login', { req });
}

/** Second step of sign-in: a 6-digit TOTP code or a backup code such as `Q3WQ-MR93-W5VB-CAGH`. */
export function loginMfa(req: { code: string }): Promise<Me> {
  return call<Me>('login_mfa', { req });
}

export function logout(): Promise<null> {
  return call<null>('logout');
}

export function me(): Promise<Me | null> {
  return call<Me | null>('me');
}

export function changePassword(req: { current: string; new_password: string }): Promise<Me> {
  return call<Me>('change_password', { req });
}

/** Where the console stands (signed out, active, locked after the idle timeout); not use. */
export function sessionStatus(): Promise<SessionStatus> {
  return call<SessionStatus>('session_status');
}

/** The operator used the window: the idle timeout starts again (or the console locks). */
export function sessionActivity(): Promise<SessionStatus> {
  return call<SessionStatus>('session_activity');
}
