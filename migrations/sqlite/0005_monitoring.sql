-- Monitoring and incidents. A restriction placed on an account can invalidate its access
-- tokens (a step-up requirement), so restrictions move the authorisation epoch too.
CREATE TRIGGER auth_epoch_restrictions_insert AFTER INSERT ON user_restrictions
BEGIN UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 1; END;
CREATE TRIGGER auth_epoch_restrictions_update AFTER UPDATE ON user_restrictions
BEGIN UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 1; END;

-- A detection folded into an open incident adds each piece of evidence once.
CREATE UNIQUE INDEX incident_evidence_once_key ON incident_evidence (incident_id, kind, ref_id, rule);
CREATE INDEX incident_evidence_rule_idx ON incident_evidence (rule, added_at);
CREATE INDEX incident_evidence_ref_idx ON incident_evidence (ref_id);
CREATE INDEX user_restrictions_active_idx ON user_restrictions (user_id, kind, lifted_at);
CREATE INDEX ip_blocks_active_idx ON ip_blocks (ip, lifted_at);
CREATE INDEX incident_actions_open_idx ON incident_actions (incident_id, action, reversed_at);
-- The detectors read activity in (time, id) order, a page at a time.
CREATE INDEX activity_log_time_id_idx ON activity_log (occurred_at, id);
