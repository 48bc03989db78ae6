import { afterEach, describe, expect, it, vi } from 'vitest';
import { isSessionLost, reportAuthError, setAuthErrorHandler, toCommandError } from './errors';

describe('toCommandError', () => {
  it('passes command errors through', () => {
    const e = { code: 'forbidden', message: 'No.' };
    expect(toCommandError(e)).toBe(e);
  });

  it('wraps strings and Errors as internal errors', () => {
    expect(toCommandError(' command x not found ')).toEqual({ code: 'internal', message: 'command x not found' });
    expect(toCommandError(new Error('IPC down'))).toEqual({ code: 'internal', message: 'IPC down' });
    expect(toCommandError(42).code).toBe('internal');
  });
});

describe('auth error handler', () => {
  let remove: (() => void) | null = null;
  afterEach(() => remove?.());

  it('receives session-level errors only', () => {
    const handler = vi.fn();
    remove = setAuthErrorHandler(handler);
    reportAuthError({ code: 'not_signed_in', message: '' });
    reportAuthError({ code: 'session_ended', message: 'Revoked.' });
    reportAuthError({ code: 'must_change_password', message: '' });
    reportAuthError({ code: 'forbidden', message: '' });
    reportAuthError({ code: 'invalid_credentials', message: '' });
    expect(handler.mock.calls.map(([e]) => e.code)).toEqual([
      'not_signed_in',
      'session_ended',
      'must_change_password',
    ]);
  });

  it('classifies session loss', () => {
    expect(isSessionLost({ code: 'session_ended', message: '' })).toBe(true);
    expect(isSessionLost({ code: 'not_signed_in', message: '' })).toBe(true);
    expect(isSessionLost({ code: 'mfa_invalid', message: '' })).toBe(false);
  });

  it('stops calling a removed handler', () => {
    const handler = vi.fn();
    setAuthErrorHandler(handler)();
    reportAuthError({ code: 'not_signed_in', message: '' });
    expect(handler).not.toHaveBeenCalled();
  });
});
