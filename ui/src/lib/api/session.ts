import { call } from './ipc';
import type { LoginRequest, LoginResult, Me } from './types';

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
