import { describe, expect, it } from 'vitest';
import { assignableOnly, sameRoles } from './roles';
import { ACTION_BUTTONS, describeAction } from './user-actions';

describe('roles', () => {
  it('keeps assignable roles in display order', () => {
    expect(assignableOnly(['admin', 'user', 'moderator'])).toEqual(['moderator', 'admin']);
  });

  it('compares role sets regardless of order', () => {
    expect(sameRoles(['admin', 'moderator'], ['moderator', 'admin'])).toBe(true);
    expect(sameRoles(['admin'], ['admin', 'moderator'])).toBe(false);
  });
});

describe('user actions', () => {
  it('asks before every destructive action', () => {
    for (const action of ['suspend', 'reset_password', 'reset_mfa'] as const) {
      expect(describeAction(action, 'bob').confirm?.danger).toBe(true);
    }
    for (const action of ['unsuspend', 'unlock', 'grant_keys', 'set_roles'] as const) {
      expect(describeAction(action, 'bob').confirm).toBeUndefined();
    }
  });

  it('names the account in the confirmation', () => {
    expect(describeAction('suspend', 'bob').confirm?.title).toBe('Suspend bob?');
    expect(describeAction('suspend', 'me', true).confirm?.message).toMatch(/your own account/);
  });

  it('has a label for every header button', () => {
    for (const action of ACTION_BUTTONS) {
      expect(describeAction(action, 'bob').label).not.toBe('');
    }
  });
});
