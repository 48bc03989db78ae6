// The options of a list filter's choice (see `components/SelectFilter.svelte`).

export interface Choice<V extends string> {
  value: V;
  label: string;
}

/** `values` in their order, each with the words `label` gives it. */
export function choices<V extends string>(values: readonly V[], label: (value: V) => string): Choice<V>[] {
  return values.map((value) => ({ value, label: label(value) }));
}
