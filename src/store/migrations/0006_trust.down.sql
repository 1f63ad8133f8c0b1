ALTER TABLE llm_calls DROP COLUMN outcome;
ALTER TABLE playbooks DROP COLUMN deleted_name;
ALTER TABLE playbooks DROP COLUMN deleted_at;
ALTER TABLE run_samples DROP COLUMN unknown_ids;
DROP INDEX bullets_content;
ALTER TABLE revisions DROP COLUMN ops_hash;
