// Typed wrappers for application-level Tauri commands.
//
// Only modules under `src/lib/api/` may call `invoke`; the rest of the UI goes
// through these typed functions (enforced by `src/lib/api/boundary.test.ts`).
import { call } from './ipc';
import type { AppStatus } from './types';

/** Version string of the `vigil` core library, e.g. `"0.1.0"`. */
export function appVersion(): Promise<string> {
  return call<string>('app_version');
}

/** Where the console stands: initialised or not, database, keystore, signed-in operator. */
export function appStatus(): Promise<AppStatus> {
  return call<AppStatus>('app_status');
}
