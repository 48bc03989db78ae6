import { call } from './ipc';
import type { NoticeView } from './types';

/** The signed-in operator's notices of changes to their own account, newest first. */
export function notices(): Promise<NoticeView[]> {
  return call<NoticeView[]>('notices');
}

/** Dismisses one notice, or all of them when `id` is null; returns how many. */
export function dismissNotice(id: string | null): Promise<number> {
  return call<number>('notices_dismiss', { req: { id } });
}
