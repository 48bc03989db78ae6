import type { KeyHolderView, PurposeView, RotationProgress } from './api/types';

/** What each data key protects, in words an auditor recognises. */
export const PURPOSE_COPY: Record<string, { label: string; description: string }> = {
  pii: {
    label: 'Personal data',
    description: 'Encrypts personal data such as names and e-mail addresses.',
  },
  blind_index: {
    label: 'Search index',
    description: 'Keys the blind index that allows exact e-mail lookups without decrypting.',
  },
  content_hash: {
    label: 'Content hashing',
    description: 'Keys the hashes used to recognise content without storing it.',
  },
};

export function purposeLabel(purpose: string): string {
  return PURPOSE_COPY[purpose]?.label ?? purpose;
}

/** Purposes with a current key version that `holder` has not been granted. */
export function missingGrants(holder: KeyHolderView, purposes: readonly PurposeView[]): string[] {
  return purposes
    .filter((p) => p.current !== null && !holder.granted.includes(p.purpose))
    .map((p) => p.purpose);
}

/** Rows done and total for a purpose: the live event if there is one, else the stored state. */
export function rotationStatus(
  purpose: PurposeView,
  live: RotationProgress | undefined,
): { done: number; total: number; finished: boolean } | null {
  if (live && !live.finished) {
    return { done: live.rows_done, total: live.rows_total, finished: false };
  }
  if (purpose.rotation) {
    const { rows_done, rows_left } = purpose.rotation;
    return { done: rows_done, total: rows_done + rows_left, finished: false };
  }
  if (live?.finished) {
    return { done: live.rows_total, total: live.rows_total, finished: true };
  }
  return null;
}

/** Total rows protected by any version of a purpose's key. */
export function purposeRows(purpose: PurposeView): number {
  return purpose.versions.reduce((sum, v) => sum + v.rows, 0);
}
