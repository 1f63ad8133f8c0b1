ALTER TABLE playbooks DROP COLUMN agent_policy;
DROP INDEX trace_inbox_status;
DROP TABLE trace_inbox;
