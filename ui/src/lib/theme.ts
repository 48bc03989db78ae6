export type Theme = 'light' | 'dark';

export const THEME_STORAGE_KEY = 'vigil.theme';

/** A stored preference, or `null` when nothing valid is stored (follow the OS). */
export function parseStoredTheme(value: string | null): Theme | null {
  return value === 'light' || value === 'dark' ? value : null;
}

/** The explicit choice if there is one, else the OS preference. */
export function resolveTheme(stored: Theme | null, systemPrefersDark: boolean): Theme {
  return stored ?? (systemPrefersDark ? 'dark' : 'light');
}

export function otherTheme(theme: Theme): Theme {
  return theme === 'dark' ? 'light' : 'dark';
}
