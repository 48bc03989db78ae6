import { call } from './ipc';
import type { DemoSeedReport, DemoSeedRequest } from './types';

/** Fills an empty platform with demo data (administrators). */
export function demoSeed(req: DemoSeedRequest): Promise<DemoSeedReport> {
  return call<DemoSeedReport>('demo_seed', { req });
}
