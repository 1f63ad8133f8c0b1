-- Grow and refine: a token budget per playbook; caches of derived data (a playbook's size in tokens
-- per revision, embeddings per content); what each sample was shown; prompts stored by reference.
ALTER TABLE playbooks ADD COLUMN token_budget INTEGER CHECK (token_budget IS NULL OR token_budget > 0);

-- The playbook's size as the generator sees it, counted once per revision (derived; safe to delete).
CREATE TABLE playbook_tokens (
    playbook_id INTEGER NOT NULL REFERENCES playbooks(id) ON DELETE CASCADE,
    revision_id INTEGER NOT NULL,
    tokens      INTEGER NOT NULL,
    PRIMARY KEY (playbook_id, revision_id)
) WITHOUT ROWID;

-- Embedding vectors by model and content hash (FNV-1a 64 of the text, stored as a signed integer):
-- a text is embedded once per model (derived; safe to delete).
CREATE TABLE embeddings (
    model  TEXT    NOT NULL,
    hash   INTEGER NOT NULL,
    dim    INTEGER NOT NULL,
    vector BLOB    NOT NULL,
    PRIMARY KEY (model, hash)
) WITHOUT ROWID;

-- The bullets the generator was shown (for the curator's row, the curator), packed (see
-- src/store/blobs.rs), or as an integer: the hash of the packed list in `blobs`; NULL: the whole
-- playbook.
ALTER TABLE run_samples ADD COLUMN shown BLOB;

-- How to rebuild the playbook text a prompt carried (JSON: revision, bullets shown or "row": the
-- ones its sample row lists, rendering); the stored prompt holds a marker in its place, so prompts
-- do not grow with the playbook.
ALTER TABLE llm_calls ADD COLUMN playbook_view TEXT;

-- Texts that recur across model calls (a role's system prompt), stored once by content hash
-- (FNV-1a 64 as a signed integer); stored prompts refer to them.
CREATE TABLE blobs (
    hash INTEGER PRIMARY KEY,
    body BLOB NOT NULL
);

-- The bullets more harmful than helpful, counted after every batch (a metric) without a scan.
CREATE INDEX bullets_harmful ON bullets (playbook_id) WHERE status = 'active' AND harmful > helpful;
