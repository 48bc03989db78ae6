import type { Attachment } from 'svelte/attachments';

/**
 * Focuses the element when it is mounted — the accessible replacement for the
 * `autofocus` attribute on screens that open with a single obvious field.
 */
export const focusOnMount: Attachment<HTMLElement> = (element) => {
  queueMicrotask(() => element.focus());
};
