// The columns of a list's table (see `components/ListTable.svelte`).

/** A column: its heading, or the heading with how it is shown. */
export type Column =
  | string
  | {
      label: string;
      /** Said to screen readers only. */
      hidden?: boolean;
      /** Numbers, set right. */
      num?: boolean;
    };

/** A column in its full form. */
export function column(c: Column): { label: string; hidden: boolean; num: boolean } {
  if (typeof c === 'string') return { label: c, hidden: false, num: false };
  return { label: c.label, hidden: c.hidden ?? false, num: c.num ?? false };
}
