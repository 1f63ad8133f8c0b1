-- Version 4 stores whole prompts: the playbook text goes back into the prompts that hold a marker
-- only when read by a newer binary; an older one shows the marker. Budgets and caches are dropped.
ALTER TABLE llm_calls DROP COLUMN playbook_view;
ALTER TABLE run_samples DROP COLUMN shown;
DROP TABLE embeddings;
DROP TABLE playbook_tokens;
ALTER TABLE playbooks DROP COLUMN token_budget;
