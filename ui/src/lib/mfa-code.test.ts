import { describe, expect, it } from 'vitest';
import { isPlausibleMfaCode, normaliseMfaCode } from './mfa-code';

describe('normaliseMfaCode', () => {
  it('compacts TOTP codes', () => {
    expect(normaliseMfaCode('123 456')).toBe('123456');
    expect(normaliseMfaCode(' 123-456 ')).toBe('123456');
  });

  it('regroups backup codes however they were typed', () => {
    expect(normaliseMfaCode(' Q3WQ-MR93-W5VB-CAGH ')).toBe('Q3WQ-MR93-W5VB-CAGH');
    expect(normaliseMfaCode('q3wqmr93w5vbcagh')).toBe('Q3WQ-MR93-W5VB-CAGH');
    expect(normaliseMfaCode('q3wq mr93-w5vb cagh')).toBe('Q3WQ-MR93-W5VB-CAGH');
  });
});

describe('isPlausibleMfaCode', () => {
  it('accepts six digits or a 16-character backup code', () => {
    expect(isPlausibleMfaCode('123456')).toBe(true);
    expect(isPlausibleMfaCode('Q3WQ-MR93-W5VB-CAGH')).toBe(true);
  });

  it('refuses anything else', () => {
    expect(isPlausibleMfaCode('12345')).toBe(false);
    expect(isPlausibleMfaCode('1234567')).toBe(false);
    expect(isPlausibleMfaCode('ABCD-EFGH')).toBe(false);
    expect(isPlausibleMfaCode(normaliseMfaCode('q3wq-mr93-w5vb'))).toBe(false);
    expect(isPlausibleMfaCode('')).toBe(false);
  });
});
