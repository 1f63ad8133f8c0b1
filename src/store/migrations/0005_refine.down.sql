-- Version 4 stores whole prompts: the playbook text goes back into the prompts that hold a marker
-- only when read by a newer binary; an older one shows the marker. Budgets and caches are dropped.
DROP INDEX bullets_harmful;
-- Messages stored by reference get their text back in place.
UPDATE llm_calls SET prompt = (
    SELECT json_group_array(
        CASE WHEN json_extract(m.value, '$.text') IS NOT NULL
             THEN json_object('role', json_extract(m.value, '$.role'),
                              'content', (SELECT CAST(b.body AS TEXT) FROM blobs b
                                          WHERE b.hash = json_extract(m.value, '$.text')))
             ELSE json(m.value) END)
    FROM json_each(llm_calls.prompt) m)
WHERE json_valid(prompt) AND prompt LIKE '%"text":%';
DROP TABLE blobs;
ALTER TABLE llm_calls DROP COLUMN playbook_view;
ALTER TABLE run_samples DROP COLUMN shown;
DROP TABLE embeddings;
DROP TABLE playbook_tokens;
ALTER TABLE playbooks DROP COLUMN token_budget;
