-- Notices to operators of security changes to their own account (issue 19, item 10): shown in
-- the app at their next sign-in until dismissed, and queued in the outbox (`notifications`) for
-- mail delivery (issue 22). A notice holds no secret and no address: its kind, when, and who
-- made the change when it was someone else.
CREATE TABLE operator_notices (
    id            TEXT NOT NULL PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind          TEXT NOT NULL CHECK (kind IN ('password_changed', 'password_reset', 'mfa_enabled',
                      'mfa_disabled', 'mfa_reset', 'backup_codes_regenerated', 'new_machine')),
    details       TEXT NOT NULL DEFAULT '{}',
    created_at    BIGINT NOT NULL,
    dismissed_at  BIGINT
);
CREATE INDEX operator_notices_user_idx ON operator_notices (user_id, dismissed_at, created_at);

-- The outbox gains what delivery needs: the message's template, its state and when it is next
-- tried. A message names its recipient by account id only; the address is opened at send time.
ALTER TABLE notifications ADD COLUMN template TEXT;
ALTER TABLE notifications ADD COLUMN state TEXT NOT NULL DEFAULT 'queued'
    CHECK (state IN ('queued', 'sent', 'failed', 'cancelled'));
ALTER TABLE notifications ADD COLUMN next_attempt_at BIGINT;
UPDATE notifications SET state = 'sent' WHERE sent_at IS NOT NULL;
UPDATE notifications SET next_attempt_at = created_at WHERE sent_at IS NULL;
CREATE INDEX notifications_due_idx ON notifications (state, next_attempt_at);
