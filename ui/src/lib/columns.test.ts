import { describe, expect, it } from 'vitest';
import { column } from './columns';

describe('column', () => {
  it('takes a bare heading as a plain column', () => {
    expect(column('Reason')).toEqual({ label: 'Reason', hidden: false, num: false });
  });

  it('keeps what a column says of itself', () => {
    expect(column({ label: 'Actions', hidden: true })).toEqual({ label: 'Actions', hidden: true, num: false });
    expect(column({ label: 'Evidence', num: true })).toEqual({ label: 'Evidence', hidden: false, num: true });
  });
});
