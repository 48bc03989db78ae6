import type { Section } from './nav';

/** Every screen of the signed-in console. */
export type Route =
  | { name: 'dashboard' }
  | { name: 'incidents' }
  | { name: 'incident'; id: string }
  | { name: 'blocks' }
  | { name: 'users' }
  | { name: 'user'; id: string; username: string }
  | { name: 'requests' }
  | { name: 'request'; id: string }
  | { name: 'holds' }
  | { name: 'retention' }
  | { name: 'keys' }
  | { name: 'audit' }
  | { name: 'security' }
  | { name: 'outbox' }
  | { name: 'settings' }
  | { name: 'account' }
  | { name: 'change-password' };

/** The sidebar section a route belongs to. */
export function sectionOf(route: Route): Section {
  switch (route.name) {
    case 'user':
      return 'users';
    case 'request':
      return 'requests';
    case 'incident':
      return 'incidents';
    case 'change-password':
      return 'account';
    default:
      return route.name;
  }
}

class Router {
  route = $state<Route>({ name: 'account' });
  /** Bumped on every navigation, so screens can move focus to their heading. */
  serial = $state(0);

  go(route: Route): void {
    this.route = route;
    this.serial += 1;
  }

  open(section: Section): void {
    this.go({ name: section } as Route);
  }
}

export const router = new Router();
