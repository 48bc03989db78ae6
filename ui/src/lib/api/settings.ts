import { call } from './ipc';
import type { SettingsView } from './types';

export function settingsShow(): Promise<SettingsView> {
  return call<SettingsView>('settings_show');
}
