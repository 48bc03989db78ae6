import type { UserAction } from './api/types';
import type { ConfirmRequest } from './confirm.svelte';

/** Header buttons of a user's page, in display order (roles and sessions are edited in place). */
export const ACTION_BUTTONS: readonly UserAction[] = [
  'unlock',
  'unsuspend',
  'grant_keys',
  'reset_password',
  'reset_mfa',
  'suspend',
];

export interface ActionCopy {
  label: string;
  /** Present for destructive actions, which ask before running. */
  confirm?: ConfirmRequest;
  /** Success message. */
  done?: string;
}

/** Button label, confirmation text and success message for an action on `username`. */
export function describeAction(action: UserAction, username: string, self = false): ActionCopy {
  switch (action) {
    case 'suspend':
      return {
        label: 'Suspend',
        confirm: {
          title: `Suspend ${username}?`,
          message: self
            ? 'You are suspending your own account. Your sessions end now and you will not be able to sign in until another administrator reinstates you.'
            : `${username} will be signed out everywhere and cannot sign in until the account is reinstated. Nothing is deleted.`,
          confirmLabel: 'Suspend account',
          danger: true,
        },
        done: `${username} is suspended.`,
      };
    case 'unsuspend':
      return { label: 'Reinstate', done: `${username} is active again.` };
    case 'unlock':
      return { label: 'Unlock', done: `${username} is unlocked and can sign in again.` };
    case 'reset_password':
      return {
        label: 'Reset password',
        confirm: {
          title: `Reset the password of ${username}?`,
          message: `The current password stops working, and ${username}'s two-factor authentication, which only that password opened, is removed. Vigil shows a temporary password once; ${username} must replace it at the next sign-in and set up two-factor again.`,
          confirmLabel: 'Reset password',
          danger: true,
        },
      };
    case 'reset_mfa':
      return {
        label: 'Reset two-factor',
        confirm: {
          title: `Reset two-factor authentication of ${username}?`,
          message: `Their authenticator app and backup codes stop working. ${username} signs in with the password alone until they enrol again. Do this only after confirming their identity.`,
          confirmLabel: 'Reset two-factor',
          danger: true,
        },
        done: `Two-factor authentication of ${username} has been reset.`,
      };
    case 'set_roles':
      return { label: 'Save roles', done: `Roles of ${username} saved.` };
    case 'revoke_session':
      return { label: 'End session', done: 'Session ended.' };
    case 'grant_keys':
      return {
        label: 'Grant data keys',
        done: `Data keys granted to ${username}.`,
      };
  }
}
