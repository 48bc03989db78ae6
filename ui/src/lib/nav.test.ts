import { describe, expect, it } from 'vitest';
import { can, canOpen, landingSection, NAV_ITEMS, visibleNav } from './nav';

const sections = (permissions: string[]) => visibleNav(permissions).map((item) => item.section);

describe('visibleNav', () => {
  it('shows only My account without permissions', () => {
    expect(sections([])).toEqual(['account']);
  });

  it('maps each permission to its section, in sidebar order', () => {
    expect(sections(['users_read'])).toEqual(['users', 'account']);
    expect(sections(['keys_manage'])).toEqual(['keys', 'account']);
    expect(sections(['audit_read'])).toEqual(['audit', 'account']);
    expect(sections(['security_events_read'])).toEqual(['security', 'account']);
    expect(sections(['config_read'])).toEqual(['settings', 'account']);
    expect(sections(['config_read', 'audit_read', 'keys_manage', 'users_read'])).toEqual([
      'users',
      'keys',
      'audit',
      'settings',
      'account',
    ]);
  });

  it('shows requests and legal holds to those who handle them', () => {
    // A compliance officer.
    expect(
      sections(['audit_read', 'audit_verify', 'users_read', 'dsr_read', 'dsr_manage', 'legal_hold_manage']),
    ).toEqual(['users', 'requests', 'holds', 'audit', 'account']);
    // A moderator has neither, but has the incident screens and the security events.
    expect(
      sections(['audit_read', 'users_read', 'incidents_read', 'incidents_act', 'security_events_read']),
    ).toEqual(['dashboard', 'incidents', 'blocks', 'users', 'audit', 'security', 'account']);
    expect(canOpen('security', ['dsr_read', 'audit_read'])).toBe(false);
    expect(canOpen('requests', ['dsr_read'])).toBe(true);
    expect(canOpen('holds', ['dsr_read'])).toBe(false);
  });

  it('shows the dashboard, the incident queue and IP blocks to those who read incidents', () => {
    expect(sections(['incidents_read'])).toEqual(['dashboard', 'incidents', 'blocks', 'account']);
    expect(canOpen('incidents', ['incidents_read'])).toBe(true);
    expect(canOpen('blocks', ['dsr_read'])).toBe(false);
    expect(landingSection(['incidents_read', 'users_read'])).toBe('dashboard');
  });

  it('shows retention to compliance officers and administrators, who read it', () => {
    // A compliance officer.
    expect(
      sections([
        'audit_read',
        'users_read',
        'dsr_read',
        'incidents_read',
        'retention_read',
        'retention_manage',
        'legal_hold_manage',
      ]),
    ).toEqual(['dashboard', 'incidents', 'blocks', 'users', 'requests', 'holds', 'retention', 'audit', 'account']);
    expect(canOpen('retention', ['retention_read'])).toBe(true);
    // A moderator does not.
    expect(canOpen('retention', ['audit_read', 'users_read', 'incidents_read', 'incidents_act'])).toBe(false);
  });

  it('ignores permissions that have no section', () => {
    expect(sections(['roles_assign', 'audit_verify'])).toEqual(['account']);
    // Administrators see the outbox.
    expect(sections(['users_manage', 'roles_assign'])).toEqual(['outbox', 'account']);
  });

  it('covers every section exactly once', () => {
    expect(new Set(NAV_ITEMS.map((item) => item.section)).size).toBe(NAV_ITEMS.length);
  });
});

describe('canOpen / landingSection / can', () => {
  it('allows a section only with its permission', () => {
    expect(canOpen('audit', ['audit_read'])).toBe(true);
    expect(canOpen('audit', ['users_read'])).toBe(false);
    expect(canOpen('account', [])).toBe(true);
  });

  it('lands on the first visible section', () => {
    expect(landingSection(['audit_read', 'users_read'])).toBe('users');
    expect(landingSection(['audit_read'])).toBe('audit');
    expect(landingSection([])).toBe('account');
  });

  it('checks a single permission of the signed-in operator', () => {
    expect(can({ permissions: ['users_manage'] }, 'users_manage')).toBe(true);
    expect(can({ permissions: [] }, 'users_manage')).toBe(false);
    expect(can(null, 'users_manage')).toBe(false);
  });
});
