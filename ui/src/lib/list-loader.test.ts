import { describe, expect, it } from 'vitest';
import { ListLoader } from './list-loader.svelte';

describe('ListLoader', () => {
  it('keeps the rows of a load and clears an earlier failure', async () => {
    let fail = true;
    const list = new ListLoader<number[]>(() => (fail ? Promise.reject(new Error('down')) : Promise.resolve([1, 2])));
    await list.load();
    expect(list.failure).toBeInstanceOf(Error);
    expect(list.rows).toBeNull();
    fail = false;
    await list.load();
    expect(list.rows).toEqual([1, 2]);
    expect(list.failure).toBeNull();
    expect(list.loading).toBe(false);
  });

  it('lands only the newest of overlapping loads', async () => {
    const answers: ((rows: string[]) => void)[] = [];
    const list = new ListLoader<string[]>(() => new Promise((resolve) => answers.push(resolve)));
    const first = list.load();
    const second = list.load();
    answers[1]!(['new']);
    await second;
    answers[0]!(['old']);
    await first;
    expect(list.rows).toEqual(['new']);
    expect(list.loading).toBe(false);
  });
});
