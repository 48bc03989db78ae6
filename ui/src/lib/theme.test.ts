import { describe, expect, it } from 'vitest';
import { otherTheme, parseStoredTheme, resolveTheme } from './theme';

describe('theme', () => {
  it('reads only valid stored values', () => {
    expect(parseStoredTheme('dark')).toBe('dark');
    expect(parseStoredTheme('light')).toBe('light');
    expect(parseStoredTheme('blue')).toBeNull();
    expect(parseStoredTheme(null)).toBeNull();
  });

  it('follows the OS unless a choice is stored', () => {
    expect(resolveTheme(null, true)).toBe('dark');
    expect(resolveTheme(null, false)).toBe('light');
    expect(resolveTheme('light', true)).toBe('light');
    expect(resolveTheme('dark', false)).toBe('dark');
  });

  it('toggles between the two', () => {
    expect(otherTheme('dark')).toBe('light');
    expect(otherTheme('light')).toBe('dark');
  });
});
