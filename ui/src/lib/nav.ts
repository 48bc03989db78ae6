import type { Me } from './api/types';

export type Section =
  | 'dashboard'
  | 'incidents'
  | 'blocks'
  | 'users'
  | 'requests'
  | 'holds'
  | 'retention'
  | 'keys'
  | 'audit'
  | 'security'
  | 'outbox'
  | 'settings'
  | 'account';

export interface NavItem {
  section: Section;
  label: string;
  /** Permission that shows the item; `null` = every signed-in operator. */
  permission: string | null;
  description: string;
}

/** Sidebar entries in display order, with the permission each needs (contract "Navigation"). */
export const NAV_ITEMS: readonly NavItem[] = [
  {
    section: 'dashboard',
    label: 'Dashboard',
    permission: 'incidents_read',
    description: 'Incidents, activity and requests over time',
  },
  {
    section: 'incidents',
    label: 'Incidents',
    permission: 'incidents_read',
    description: 'Security incidents to review, most severe first',
  },
  {
    section: 'blocks',
    label: 'IP blocks',
    permission: 'incidents_read',
    description: 'Addresses blocked from the platform',
  },
  {
    section: 'users',
    label: 'Users',
    permission: 'users_read',
    description: 'Operator and platform accounts',
  },
  {
    section: 'requests',
    label: 'Requests',
    permission: 'dsr_read',
    description: 'Data-subject requests (GDPR) and their deadlines',
  },
  {
    section: 'holds',
    label: 'Legal holds',
    permission: 'legal_hold_manage',
    description: 'Accounts that must not be erased',
  },
  {
    section: 'retention',
    label: 'Retention',
    permission: 'retention_read',
    description: 'How long data is kept, what a cleanup would do, and past runs',
  },
  { section: 'keys', label: 'Keys', permission: 'keys_manage', description: 'Data keys and holders' },
  { section: 'audit', label: 'Audit', permission: 'audit_read', description: 'Tamper-evident log' },
  {
    section: 'security',
    label: 'Security events',
    permission: 'security_events_read',
    description: 'Refused permissions, rejected tokens, sign-outs, expired and locked sessions',
  },
  {
    section: 'outbox',
    label: 'Outbox',
    permission: 'users_manage',
    description: 'Mail to subjects and operators: waiting, sent, failed or cancelled',
  },
  {
    section: 'settings',
    label: 'Settings',
    permission: 'config_read',
    description: 'Configuration and policies',
  },
  {
    section: 'account',
    label: 'My account',
    permission: null,
    description: 'Password and two-factor authentication',
  },
];

/** The entries `permissions` allow, in display order. */
export function visibleNav(permissions: readonly string[]): NavItem[] {
  return NAV_ITEMS.filter((item) => item.permission === null || permissions.includes(item.permission));
}

/** Whether `permissions` allow opening `section`. */
export function canOpen(section: Section, permissions: readonly string[]): boolean {
  return visibleNav(permissions).some((item) => item.section === section);
}

/** The first section to show after sign-in. */
export function landingSection(permissions: readonly string[]): Section {
  return visibleNav(permissions)[0]?.section ?? 'account';
}

/** Whether `me` holds `permission`. */
export function can(me: Pick<Me, 'permissions'> | null, permission: string): boolean {
  return me !== null && me.permissions.includes(permission);
}
