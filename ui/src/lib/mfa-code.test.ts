import { describe, expect, it } from 'vitest';
import { isPlausibleMfaCode, normaliseMfaCode } from './mfa-code';

describe('normaliseMfaCode', () => {
  it('strips spaces and dashes from TOTP codes', () => {
    expect(normaliseMfaCode('123 456')).toBe('123456');
    expect(normaliseMfaCode(' 123-456 ')).toBe('123456');
  });

  it('lower-cases backup codes and keeps the dash', () => {
    expect(normaliseMfaCode(' ABCD-EFGH ')).toBe('abcd-efgh');
    expect(normaliseMfaCode('1234-5678')).toBe('1234-5678');
  });

  it('restores the dash of a backup code typed without it', () => {
    expect(normaliseMfaCode('abcdefgh')).toBe('abcd-efgh');
  });
});

describe('isPlausibleMfaCode', () => {
  it('accepts TOTP and backup code shapes', () => {
    expect(isPlausibleMfaCode('123456')).toBe(true);
    expect(isPlausibleMfaCode('abcd-efgh')).toBe(true);
  });

  it('rejects anything else', () => {
    expect(isPlausibleMfaCode('12345')).toBe(false);
    expect(isPlausibleMfaCode('abcd')).toBe(false);
    expect(isPlausibleMfaCode('')).toBe(false);
  });
});
