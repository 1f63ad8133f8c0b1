-- Agents' recorded runs, received by `ace serve` or the MCP server and kept until a learn run has
-- reflected on them: `pending` (waiting), `taken` (a learn run `run_id` has them), `done`, `failed`.
-- `trace` is the task and what the agent did, as JSON (a dataset sample with its trace).
CREATE TABLE trace_inbox (
    id          INTEGER PRIMARY KEY,
    playbook_id INTEGER NOT NULL REFERENCES playbooks (id),
    trace       TEXT    NOT NULL,
    received_at TEXT    NOT NULL,
    status      TEXT    NOT NULL DEFAULT 'pending',
    run_id      TEXT,
    error       TEXT
);
CREATE INDEX trace_inbox_status ON trace_inbox (status, playbook_id, id);

-- What agents may change without a person: NULL (nothing; their helpful/harmful judgements wait in
-- the queue like any proposal) or 'counters' (those judgements update the counters at once).
ALTER TABLE playbooks ADD COLUMN agent_policy TEXT;
