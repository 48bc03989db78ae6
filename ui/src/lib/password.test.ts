import { describe, expect, it } from 'vitest';
import { checkNewPassword, checkPostgresUrl } from './password';

describe('checkNewPassword', () => {
  it('asks for at least 12 characters', () => {
    expect(checkNewPassword('short', 'short')).toMatch(/12 characters/);
    expect(checkNewPassword('elevenchars', 'elevenchars')).toMatch(/12 characters/);
  });

  it('counts characters, not UTF-16 units', () => {
    expect(checkNewPassword('🔒🔒🔒🔒🔒🔒', '🔒🔒🔒🔒🔒🔒')).toMatch(/12 characters/);
  });

  it('requires the confirmation to match', () => {
    expect(checkNewPassword('correct horse battery', 'correct horse batterY')).toMatch(/do not match/);
  });

  it('accepts a long matching pair', () => {
    expect(checkNewPassword('correct horse battery', 'correct horse battery')).toBeNull();
  });

  it('allows 128 characters, counted in NFC as the core counts them, and refuses 129', () => {
    const at = 'a long enough passphrase '.repeat(6).slice(0, 128);
    expect(checkNewPassword(at, at)).toBeNull();
    expect(checkNewPassword(at + 'x', at + 'x')).toMatch(/at most 128 characters/);
    // 128 decomposed "é" are 256 code points but 128 characters in NFC.
    const nfd = 'e\u0301'.repeat(128);
    expect(checkNewPassword(nfd, nfd)).toBeNull();
  });
});

describe('checkPostgresUrl', () => {
  it('accepts postgres:// and postgresql:// URLs', () => {
    expect(checkPostgresUrl('postgres://vigil@db:5432/vigil')).toBeNull();
    expect(checkPostgresUrl(' postgresql://localhost/vigil ')).toBeNull();
  });

  it('rejects empty and other URLs', () => {
    expect(checkPostgresUrl('')).toMatch(/Enter/);
    expect(checkPostgresUrl('mysql://db/vigil')).toMatch(/postgres:\/\//);
    expect(checkPostgresUrl('postgres://')).toMatch(/postgres:\/\//);
  });
});
