import { call } from './ipc';
import type { DatabaseChangeView, SettingsView } from './types';

export function settingsShow(): Promise<SettingsView> {
  return call<SettingsView>('settings_show');
}

/** Moves this console to another Vigil database that is set up (administrators; audited). */
export function settingsSetDatabase(req: { url: string }): Promise<DatabaseChangeView> {
  return call<DatabaseChangeView>('settings_set_database', { req });
}
