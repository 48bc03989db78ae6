-- Mail delivery of the outbox. A data-subject request's verification code travels to
-- the subject's registered address (`mail`), or, for a request filed on paper for a subject with
-- no usable address, is shown to the filing officer and must then be entered by another officer
-- (`manual`). Requests filed before this change showed their code to the officer: `manual`.
-- `code_message_id` names the outbox message that carries the current code, whose state the
-- request page shows.
ALTER TABLE dsr_requests ADD COLUMN code_delivery TEXT NOT NULL DEFAULT 'manual'
    CHECK (code_delivery IN ('mail', 'manual'));
ALTER TABLE dsr_requests ADD COLUMN code_message_id TEXT;

-- When delivery last tried a message (the outbox screen shows it beside the attempts).
ALTER TABLE notifications ADD COLUMN last_attempt_at BIGINT;
-- Messages queued before their template was recorded are delivered with their kind's template.
UPDATE notifications SET template = kind WHERE template IS NULL;
UPDATE notifications SET next_attempt_at = created_at
    WHERE next_attempt_at IS NULL AND state = 'queued';
