import { describe, expect, it } from 'vitest';
import type { ErrorCode } from './api/types';
import { errorCopy, errorLine } from './error-copy';

describe('errorCopy', () => {
  it('gives each sign-in failure a distinct headline', () => {
    const codes: ErrorCode[] = [
      'invalid_credentials',
      'throttled',
      'not_active',
      'mfa_invalid',
      'challenge_expired',
    ];
    const titles = codes.map((code) => errorCopy({ code, message: 'x' }).title);
    expect(new Set(titles).size).toBe(codes.length);
  });

  it('keeps the core message where it carries the specifics', () => {
    expect(errorCopy({ code: 'throttled', message: 'Try again in 42 seconds.' })).toEqual({
      code: 'throttled',
      title: 'Too many attempts',
      detail: 'Try again in 42 seconds.',
    });
    expect(errorCopy({ code: 'password_rejected', message: 'Too short: 12 characters minimum.' }).detail).toBe(
      'Too short: 12 characters minimum.',
    );
    expect(errorCopy({ code: 'not_active', message: 'The account is suspended.' }).detail).toBe(
      'The account is suspended.',
    );
  });

  it('never echoes the core text for invalid credentials', () => {
    const copy = errorCopy({ code: 'invalid_credentials', message: 'no such user bob' });
    expect(copy.title).toBe('Username or password is incorrect');
    expect(copy.detail).not.toContain('bob');
  });

  it('falls back to guidance when the message is empty', () => {
    expect(errorCopy({ code: 'challenge_expired', message: '' }).detail).toBe(
      'Enter your username and password again.',
    );
  });

  it('treats unknown codes and non-command rejections as internal', () => {
    expect(errorCopy({ code: 'weird', message: 'boom' }).code).toBe('internal');
    expect(errorCopy('command users_list not found')).toMatchObject({
      code: 'internal',
      detail: 'command users_list not found',
    });
    expect(errorCopy(undefined).detail).toBe('An unexpected error occurred.');
  });
});

describe('errorLine', () => {
  it('joins headline and detail into one sentence', () => {
    expect(errorLine({ code: 'forbidden', message: 'Needs users_manage.' })).toBe(
      'Your role does not allow this: Needs users_manage.',
    );
  });
});
