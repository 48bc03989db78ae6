import { describe, expect, it } from 'vitest';

// Every UI source file except tests, keyed by path relative to the Vite root.
const sources = import.meta.glob<string>(['/src/**/*.{ts,svelte}', '!/src/**/*.test.ts'], {
  query: '?raw',
  import: 'default',
  eager: true,
});

const IPC_IMPORT = /from\s+['"]@tauri-apps\/api\/core['"]|\binvoke\s*[<(]/;
const EVENT_IMPORT = /from\s+['"]@tauri-apps\/api\/event['"]|\blisten\s*[<(]/;

describe('IPC boundary', () => {
  it('finds the UI sources', () => {
    expect(Object.keys(sources)).toContain('/src/lib/api/app.ts');
  });

  it('only lets src/lib/api/ call invoke', () => {
    const offenders = Object.entries(sources)
      .filter(([path]) => !path.startsWith('/src/lib/api/'))
      .filter(([, text]) => IPC_IMPORT.test(text))
      .map(([path]) => path);
    expect(offenders).toEqual([]);
  });

  it('only lets src/lib/api/ subscribe to backend events', () => {
    const offenders = Object.entries(sources)
      .filter(([path]) => !path.startsWith('/src/lib/api/'))
      .filter(([, text]) => EVENT_IMPORT.test(text))
      .map(([path]) => path);
    expect(offenders).toEqual([]);
  });
});
