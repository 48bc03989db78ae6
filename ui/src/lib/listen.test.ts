import { describe, expect, it, vi } from 'vitest';
import { listenWhileShown } from './listen';

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('listenWhileShown', () => {
  it('passes events on and unsubscribes when stopped', async () => {
    const unlisten = vi.fn();
    let emit: ((n: number) => void) | null = null;
    const handler = vi.fn();
    const stop = listenWhileShown<number>(async (h) => {
      emit = h;
      return unlisten;
    }, handler);
    await tick();
    emit!(7);
    expect(handler).toHaveBeenCalledWith(7);
    stop();
    expect(unlisten).toHaveBeenCalledTimes(1);
  });

  it('unsubscribes once in place when stopped before', async () => {
    const unlisten = vi.fn();
    let resolve: ((f: () => void) => void) | null = null;
    const stop = listenWhileShown<void>(() => new Promise((r) => (resolve = r)), () => {});
    stop();
    expect(unlisten).not.toHaveBeenCalled();
    resolve!(unlisten);
    await tick();
    expect(unlisten).toHaveBeenCalledTimes(1);
  });

  it('ignores a failed subscription', async () => {
    const stop = listenWhileShown<void>(() => Promise.reject(new Error('no events')), () => {});
    await tick();
    expect(() => stop()).not.toThrow();
  });
});
