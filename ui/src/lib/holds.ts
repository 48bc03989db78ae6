// Releasing a legal hold, as the Holds screen and an incident's page both offer it.
import { holdRelease } from './api/privacy';
import type { HoldView } from './api/types';
import { confirmation } from './confirm.svelte';
import { errorLine } from './error-copy';
import { toasts } from './toasts.svelte';

/** Asks to confirm (saying what the release lets happen), releases `hold` and says so; false
 * when the operator cancelled or the release failed (the failure shown as a toast). */
export async function confirmRelease(hold: HoldView, consequence: string): Promise<boolean> {
  const ok = await confirmation.ask({
    title: 'Release this legal hold?',
    message: `${consequence} The release is recorded in the audit log.`,
    confirmLabel: 'Release hold',
    danger: true,
  });
  if (!ok) return false;
  try {
    await holdRelease({ id: hold.id });
    toasts.success('Legal hold released.');
    return true;
  } catch (error) {
    toasts.error(errorLine(error));
    return false;
  }
}
