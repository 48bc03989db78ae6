-- Data-subject requests: while an erasure runs, the subject's identifiers (sealed with the
-- `pii` key) so a resumed run can still scan for them after the profile is gone; wiped when
-- the request completes. Steps record their details (counts, scan results) as JSON.
ALTER TABLE dsr_requests ADD COLUMN subject_sealed BLOB;
ALTER TABLE dsr_steps ADD COLUMN details TEXT;
CREATE INDEX legal_holds_open_idx ON legal_holds (target_kind, target_id, released_at);
CREATE INDEX audit_log_target_idx ON audit_log (target, seq);
