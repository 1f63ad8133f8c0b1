DROP TABLE trial_answers;
ALTER TABLE llm_calls DROP COLUMN cached_tokens;
DROP INDEX trials_batch;
DROP TABLE trials;
