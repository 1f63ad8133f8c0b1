-- Adaptation runs, their samples and model calls (transcripts), bullet citations, metrics,
-- and the pending-delta queue that stands between the curator and the playbook.
CREATE TABLE runs (
    id            TEXT    PRIMARY KEY,
    playbook_id   INTEGER NOT NULL REFERENCES playbooks(id) ON DELETE CASCADE,
    kind          TEXT    NOT NULL CHECK (kind IN ('offline', 'online')),
    status        TEXT    NOT NULL,
    config        TEXT    NOT NULL,
    feedback_mode TEXT    NOT NULL,
    checkpoint    TEXT,
    best_revision INTEGER,
    error         TEXT,
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL
);

CREATE TABLE run_samples (
    run_id        TEXT    NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    key           TEXT    NOT NULL,
    split         TEXT    NOT NULL,
    epoch         INTEGER NOT NULL,
    step          INTEGER NOT NULL,
    sample_id     TEXT    NOT NULL,
    question      TEXT    NOT NULL,
    answer        TEXT,
    ground_truth  TEXT,
    correct       INTEGER,
    first_correct INTEGER,
    rounds        INTEGER,
    feedback      TEXT,
    cited         TEXT,
    reflection    TEXT,
    created_at    TEXT    NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;

CREATE TABLE llm_calls (
    id                INTEGER PRIMARY KEY,
    run_id            TEXT,
    sample_key        TEXT,
    role              TEXT    NOT NULL,
    prompt_version    TEXT    NOT NULL,
    prompt            TEXT    NOT NULL,
    response          TEXT    NOT NULL,
    model             TEXT    NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    latency_ms        INTEGER NOT NULL,
    cost_usd          REAL    NOT NULL,
    attempts          INTEGER NOT NULL,
    created_at        TEXT    NOT NULL
);
CREATE INDEX llm_calls_run ON llm_calls (run_id, sample_key);

CREATE TABLE bullet_citations (
    playbook_id INTEGER NOT NULL,
    bullet_id   TEXT    NOT NULL,
    run_id      TEXT    NOT NULL,
    sample_key  TEXT    NOT NULL,
    PRIMARY KEY (playbook_id, bullet_id, run_id, sample_key)
) WITHOUT ROWID;

CREATE TABLE run_metrics (
    run_id      TEXT    NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    split       TEXT    NOT NULL,
    epoch       INTEGER NOT NULL,
    step        INTEGER NOT NULL,
    correct     INTEGER NOT NULL,
    total       INTEGER NOT NULL,
    revision_id INTEGER,
    PRIMARY KEY (run_id, split, epoch, step)
) WITHOUT ROWID;

CREATE TABLE pending_batches (
    id          INTEGER PRIMARY KEY,
    playbook_id INTEGER NOT NULL REFERENCES playbooks(id) ON DELETE CASCADE,
    key         TEXT    NOT NULL,
    run_id      TEXT,
    status      TEXT    NOT NULL CHECK (status IN ('pending', 'applied', 'rejected')),
    reasoning   TEXT,
    provenance  TEXT,
    created_at  TEXT    NOT NULL,
    decided_at  TEXT,
    decided_by  TEXT,
    revision_id INTEGER,
    UNIQUE (playbook_id, key)
);
CREATE INDEX pending_batches_status ON pending_batches (status, id);

CREATE TABLE pending_ops (
    batch_id   INTEGER NOT NULL REFERENCES pending_batches(id) ON DELETE CASCADE,
    idx        INTEGER NOT NULL,
    op_key     TEXT    NOT NULL,
    op         TEXT    NOT NULL,
    status     TEXT    NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'edited')),
    edited_op  TEXT,
    reason     TEXT,
    decided_by TEXT,
    decided_at TEXT,
    PRIMARY KEY (batch_id, idx)
) WITHOUT ROWID;
