import { otherTheme, parseStoredTheme, resolveTheme, THEME_STORAGE_KEY, type Theme } from './theme';

function readStored(): Theme | null {
  try {
    return parseStoredTheme(localStorage.getItem(THEME_STORAGE_KEY));
  } catch {
    return null;
  }
}

class ThemeState {
  /** The operator's explicit choice; `null` follows the OS. */
  stored = $state<Theme | null>(null);
  systemDark = $state(false);
  current = $derived(resolveTheme(this.stored, this.systemDark));

  /** Reads the preference and applies it; call once before mounting. */
  init(): void {
    const media = window.matchMedia('(prefers-color-scheme: dark)');
    this.systemDark = media.matches;
    this.stored = readStored();
    media.addEventListener('change', (event) => {
      this.systemDark = event.matches;
      this.apply();
    });
    this.apply();
  }

  toggle(): void {
    this.stored = otherTheme(this.current);
    try {
      localStorage.setItem(THEME_STORAGE_KEY, this.stored);
    } catch {
      // storage unavailable: the choice lasts for this window only
    }
    this.apply();
  }

  private apply(): void {
    const root = document.documentElement;
    root.dataset.theme = this.current;
    root.style.colorScheme = this.current;
  }
}

export const theme = new ThemeState();
