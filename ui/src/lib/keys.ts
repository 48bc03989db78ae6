import type { KeyHolderView, PurposeView, RotationProgress } from './api/types';

/** What each data key protects, in words an auditor recognises. */
export const PURPOSE_COPY: Record<string, { label: string; description: string }> = {
  contact: {
    label: 'Contact data',
    description: 'Encrypts e-mail addresses and phone numbers. Compliance officers hold it.',
  },
  network: {
    label: 'Network data',
    description: 'Encrypts IP addresses kept with a person. Officers, moderators and the worker hold it.',
  },
  pii: {
    label: 'Personal data (retired)',
    description: 'Sealed personal data before it was split into contact and network data.',
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

/** Purposes of the holder's roles with a current key version they have not been granted. */
export function missingGrants(holder: KeyHolderView, purposes: readonly PurposeView[]): string[] {
  return purposes
    .filter(
      (p) =>
        p.current !== null &&
        holder.entitled.includes(p.purpose) &&
        !holder.granted.includes(p.purpose),
    )
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
