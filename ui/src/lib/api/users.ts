import { call } from './ipc';
import type { TemporaryPassword, UserDetail, UserPage, UserQuery } from './types';

export function usersList(req: UserQuery): Promise<UserPage> {
  return call<UserPage>('users_list', { req });
}

export function userDetail(req: { id: string }): Promise<UserDetail> {
  return call<UserDetail>('user_detail', { req });
}

export function userCreate(req: { username: string; roles: string[] }): Promise<TemporaryPassword> {
  return call<TemporaryPassword>('user_create', { req });
}

export function userSetRoles(req: { id: string; roles: string[] }): Promise<UserDetail> {
  return call<UserDetail>('user_set_roles', { req });
}

export function userSetSuspended(req: {
  id: string;
  suspended: boolean;
}): Promise<UserDetail> {
  return call<UserDetail>('user_set_suspended', { req });
}

export function userUnlock(req: { id: string }): Promise<UserDetail> {
  return call<UserDetail>('user_unlock', { req });
}

export function userResetPassword(req: { id: string }): Promise<TemporaryPassword> {
  return call<TemporaryPassword>('user_reset_password', { req });
}

export function userResetMfa(req: { id: string }): Promise<UserDetail> {
  return call<UserDetail>('user_reset_mfa', { req });
}

export function sessionRevoke(req: { session_id: string }): Promise<null> {
  return call<null>('session_revoke', { req });
}
