import { call } from './ipc';
import type { KeysView } from './types';

export function keysStatus(): Promise<KeysView> {
  return call<KeysView>('keys_status');
}

/** Wraps the data keys this machine holds to `username`'s key pair(s). */
export function keysGrant(req: { username: string }): Promise<KeysView> {
  return call<KeysView>('keys_grant', { req });
}

/** Rotates one purpose's data key; resolves when re-encryption is done. */
export function keysRotate(req: { purpose: string }): Promise<KeysView> {
  return call<KeysView>('keys_rotate', { req });
}
