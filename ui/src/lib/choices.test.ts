import { describe, expect, it } from 'vitest';
import { choices } from './choices';

describe('choices', () => {
  it('labels each value in order', () => {
    expect(choices(['b', 'a'] as const, (v) => v.toUpperCase())).toEqual([
      { value: 'b', label: 'B' },
      { value: 'a', label: 'A' },
    ]);
  });
});
