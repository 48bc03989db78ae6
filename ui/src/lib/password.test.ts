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
