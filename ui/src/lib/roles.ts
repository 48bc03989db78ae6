/** Roles an operator can be given in the role pickers, in display order. */
export const ASSIGNABLE_ROLES = ['moderator', 'compliance_officer', 'admin'] as const;
export type AssignableRole = (typeof ASSIGNABLE_ROLES)[number];

export const ROLE_HINTS: Record<AssignableRole, string> = {
  moderator: 'Reviews and acts on platform accounts and content.',
  compliance_officer: 'Handles data-subject requests and legal holds; reads and verifies the audit log.',
  admin: 'Manages operators, roles, data keys and configuration.',
};

/** Keeps only assignable roles, in display order, without duplicates. */
export function assignableOnly(roles: readonly string[]): AssignableRole[] {
  return ASSIGNABLE_ROLES.filter((role) => roles.includes(role));
}

/** Whether two role lists hold the same roles, whatever their order. */
export function sameRoles(a: readonly string[], b: readonly string[]): boolean {
  const left = new Set(a);
  const right = new Set(b);
  return left.size === right.size && [...left].every((role) => right.has(role));
}

/** Badge tone for a role. */
export function roleTone(role: string): 'accent' | 'info' | 'warning' | 'neutral' {
  switch (role) {
    case 'admin':
      return 'warning';
    case 'compliance_officer':
      return 'info';
    case 'moderator':
      return 'accent';
    default:
      return 'neutral';
  }
}
