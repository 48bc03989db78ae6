import { call } from './ipc';
import type { SetupRequest, SetupResult } from './types';

/**
 * Creates the database, the first administrator and their key pair (stored in
 * the OS keychain), saves the database choice and signs the administrator in.
 * Takes one to three seconds. A database another machine already set up is only
 * connected to (`{ kind: 'connected' }`): the operator then signs in.
 */
export function setupInitialise(req: SetupRequest): Promise<SetupResult> {
  return call<SetupResult>('setup_initialise', { req });
}
