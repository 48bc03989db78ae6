// The single place that calls Tauri's `invoke`. Every domain module wraps its
// commands with `call`, which normalises rejections to `CommandError` and hands
// session-level failures to the application-wide handler before rethrowing.
import { invoke, type InvokeArgs } from '@tauri-apps/api/core';
import { reportAuthError, toCommandError } from './errors';

export async function call<T>(command: string, args?: InvokeArgs): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (raw: unknown) {
    const error = toCommandError(raw);
    reportAuthError(error);
    throw error;
  }
}
