-- Trials of proposals (`ace queue trial`, `ace bullet impact`): what the proposal (or one op of it)
-- did to accuracy on K samples, as JSON (adaptation::trial::TrialReport), newest last.
CREATE TABLE trials (
    id         INTEGER PRIMARY KEY,
    batch_id   INTEGER REFERENCES pending_batches (id),
    op_idx     INTEGER,
    subject    TEXT    NOT NULL,
    report     TEXT    NOT NULL,
    created_at TEXT    NOT NULL
);
CREATE INDEX trials_batch ON trials (batch_id, id);

-- The Generator's answers by their exact prompt (a hash of the model and the messages), so a trial
-- asks the model only for prompts it has not seen.
-- Prompt tokens a server served from its cache (where it reports them), counted apart.
ALTER TABLE llm_calls ADD COLUMN cached_tokens INTEGER;

CREATE TABLE trial_answers (
    key        INTEGER PRIMARY KEY,
    answer     TEXT    NOT NULL,
    tokens_in  INTEGER NOT NULL,
    tokens_out INTEGER NOT NULL,
    cost_usd   REAL    NOT NULL,
    created_at TEXT    NOT NULL
);
