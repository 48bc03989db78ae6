import { describe, expect, it } from 'vitest';
import type { AppStatus, Me } from './api/types';
import { phaseFor } from './phase';

const me: Me = {
  user_id: 'u1',
  username: 'alice',
  roles: ['admin'],
  permissions: ['users_read'],
  mfa_enabled: true,
  must_change_password: false,
  password_change_reason: null,
  must_enrol_mfa: false,
  keys: 'unlocked',
};

const status: AppStatus = {
  version: '0.1.0',
  initialised: true,
  database: 'SQLite /tmp/vigil.db',
  backend: 'sqlite',
  database_error: null,
  default_sqlite_path: '/tmp/vigil.db',
  keystore: 'OS keychain',
  me: null,
};

describe('phaseFor', () => {
  it('waits while booting', () => {
    expect(phaseFor(true, status, me)).toBe('booting');
  });

  it('reports an unreachable core', () => {
    expect(phaseFor(false, null, null)).toBe('unavailable');
  });

  it('runs first-time setup when not initialised', () => {
    expect(phaseFor(false, { ...status, initialised: false }, null)).toBe('setup');
  });

  it('asks for sign-in without a session', () => {
    expect(phaseFor(false, status, null)).toBe('login');
  });

  it('allows only a password change after a reset', () => {
    expect(phaseFor(false, status, { ...me, must_change_password: true })).toBe('change-password');
  });

  it('allows only MFA enrolment while the policy requires it', () => {
    expect(phaseFor(false, status, { ...me, mfa_enabled: false, must_enrol_mfa: true })).toBe(
      'enrol-mfa',
    );
    // A reset password is changed first: the credential key the enrolment seals with needs it.
    expect(
      phaseFor(false, status, { ...me, must_change_password: true, must_enrol_mfa: true }),
    ).toBe('change-password');
  });

  it('shows the lock screen over the console once it locked itself', () => {
    expect(phaseFor(false, status, me, true)).toBe('locked');
    expect(phaseFor(false, status, { ...me, must_change_password: true }, true)).toBe('locked');
  });

  it('opens the console otherwise', () => {
    expect(phaseFor(false, status, me)).toBe('console');
  });
});
