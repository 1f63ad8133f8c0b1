-- What a revision's batch said (FNV-1a 64 of its operations' JSON, as a signed integer): a batch id
-- applied again with other operations is refused instead of passing for "already applied".
ALTER TABLE revisions ADD COLUMN ops_hash INTEGER;

-- A lesson a section already holds word for word is not added again: found through the first
-- characters of the active bullets' content.
CREATE INDEX bullets_content ON bullets (section_id, substr(content, 1, 32)) WHERE status = 'active';

-- Ids a sample's answers cited or its reflections tagged that match no bullet it was shown (JSON
-- list; NULL: none): counted in the run summary, never dropped silently.
ALTER TABLE run_samples ADD COLUMN unknown_ids TEXT;

-- A deleted playbook is kept (soft delete, restorable): its row is marked and renamed out of the way
-- (`NAME (deleted N)`), so its name is free; lists and lookups by name leave it out.
ALTER TABLE playbooks ADD COLUMN deleted_at TEXT;
ALTER TABLE playbooks ADD COLUMN deleted_name TEXT;

-- What came of each model call: ok, repaired, unusable (NULL before version 6).
ALTER TABLE llm_calls ADD COLUMN outcome TEXT;
