import { describe, expect, it } from 'vitest';
import { describeError, formatVersion } from './format';

describe('formatVersion', () => {
  it('prefixes plain semantic versions with "v"', () => {
    expect(formatVersion('0.1.0')).toBe('v0.1.0');
    expect(formatVersion('12.3.45')).toBe('v12.3.45');
  });

  it('keeps pre-release and build metadata', () => {
    expect(formatVersion('1.0.0-rc.1')).toBe('v1.0.0-rc.1');
    expect(formatVersion('1.0.0+build.7')).toBe('v1.0.0+build.7');
  });

  it('trims whitespace', () => {
    expect(formatVersion('  0.2.0\n')).toBe('v0.2.0');
  });

  it('leaves non-semver strings untouched', () => {
    expect(formatVersion('dev')).toBe('dev');
    expect(formatVersion('v0.1.0')).toBe('v0.1.0');
  });

  it('reports an empty version as unknown', () => {
    expect(formatVersion('')).toBe('unknown');
    expect(formatVersion('   ')).toBe('unknown');
  });
});

describe('describeError', () => {
  it('uses the message of a shell command error', () => {
    expect(describeError({ code: 'not_found', message: 'No such session.' })).toBe(
      'No such session.',
    );
  });

  it('uses the message of an Error', () => {
    expect(describeError(new Error('IPC unavailable'))).toBe('IPC unavailable');
  });

  it('uses a non-empty string as-is', () => {
    expect(describeError(' command app_version not found ')).toBe(
      'command app_version not found',
    );
  });

  it('falls back to a generic message', () => {
    expect(describeError(undefined)).toBe('An unexpected error occurred.');
    expect(describeError({ code: 42 })).toBe('An unexpected error occurred.');
    expect(describeError(new Error(''))).toBe('An unexpected error occurred.');
  });
});
