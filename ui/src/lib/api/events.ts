// Backend events. Only modules under `src/lib/api/` may subscribe to them.
import { listen, type UnlistenFn } from '@tauri-apps/api/event';
import type { RotationProgress } from './types';

export type { UnlistenFn };

/** Calls `handler` for every `rotation-progress` event until the returned function is called. */
export function onRotationProgress(handler: (progress: RotationProgress) => void): Promise<UnlistenFn> {
  return listen<RotationProgress>('rotation-progress', (event) => handler(event.payload));
}
