// Typed wrappers for application-level Tauri commands.
//
// Only modules under `src/lib/api/` may call `invoke`; the rest of the UI goes
// through these typed functions (enforced by `src/lib/api/boundary.test.ts`).
import { invoke } from '@tauri-apps/api/core';

/** Version string of the `vigil` core library, e.g. `"0.1.0"`. */
export function appVersion(): Promise<string> {
  return invoke<string>('app_version');
}
