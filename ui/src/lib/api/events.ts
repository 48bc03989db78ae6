// Backend events. Only modules under `src/lib/api/` may subscribe to them.
import { listen, type UnlistenFn } from '@tauri-apps/api/event';
import type {
  DsrProgressEvent,
  IncidentsChangedEvent,
  RetentionProgressEvent,
  RetentionRunView,
  RotationProgress,
} from './types';

export type { UnlistenFn };

/** Calls `handler` for every `rotation-progress` event until the returned function is called. */
export function onRotationProgress(handler: (progress: RotationProgress) => void): Promise<UnlistenFn> {
  return listen<RotationProgress>('rotation-progress', (event) => handler(event.payload));
}

/** Calls `handler` for every `dsr-progress` event (a request's run step starting or ending). */
export function onDsrProgress(handler: (progress: DsrProgressEvent) => void): Promise<UnlistenFn> {
  return listen<DsrProgressEvent>('dsr-progress', (event) => handler(event.payload));
}

/** Calls `handler` whenever a run of the detectors opened or changed incidents (`incidents-changed`). */
export function onIncidentsChanged(handler: (event: IncidentsChangedEvent) => void): Promise<UnlistenFn> {
  return listen<IncidentsChangedEvent>('incidents-changed', (event) => handler(event.payload));
}

/** Calls `handler` after each chunk of a retention run started from this console (`retention-progress`). */
export function onRetentionProgress(handler: (progress: RetentionProgressEvent) => void): Promise<UnlistenFn> {
  return listen<RetentionProgressEvent>('retention-progress', (event) => handler(event.payload));
}

/** Calls `handler` when the background loop finished a scheduled retention run (`retention-ran`). */
export function onRetentionRan(handler: (run: RetentionRunView) => void): Promise<UnlistenFn> {
  return listen<RetentionRunView>('retention-ran', (event) => handler(event.payload));
}
