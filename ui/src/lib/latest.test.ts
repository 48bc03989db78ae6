import { describe, expect, it } from 'vitest';
import { Latest } from './latest';

describe('Latest', () => {
  it('keeps only the newest ticket current', () => {
    const latest = new Latest();
    const first = latest.take();
    expect(first()).toBe(true);
    const second = latest.take();
    expect(first()).toBe(false);
    expect(second()).toBe(true);
  });

  it('peeks without making the current ticket stale', () => {
    const latest = new Latest();
    const taken = latest.take();
    const peeked = latest.peek();
    expect(taken()).toBe(true);
    expect(peeked()).toBe(true);
    latest.take();
    expect(peeked()).toBe(false);
  });
});
