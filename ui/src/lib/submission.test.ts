import { describe, expect, it } from 'vitest';
import { Submission } from './submission.svelte';

describe('Submission', () => {
  it('is busy while sending and clears the last failure', async () => {
    const s = new Submission();
    s.failure = new Error('before');
    let busyWhileSending = false;
    const ok = await s.run(async () => {
      busyWhileSending = s.busy;
      expect(s.failure).toBeNull();
    });
    expect(ok).toBe(true);
    expect(busyWhileSending).toBe(true);
    expect(s.busy).toBe(false);
  });

  it('keeps the failure of a send that failed', async () => {
    const s = new Submission();
    const error = new Error('refused');
    expect(await s.run(() => Promise.reject(error))).toBe(false);
    expect(s.failure).toBe(error);
    expect(s.busy).toBe(false);
  });
});
