-- Every applied batch is a revision; revision_ops keep each bullet's / section's state before and after.
CREATE TABLE revisions (
    id          INTEGER PRIMARY KEY,
    playbook_id INTEGER NOT NULL REFERENCES playbooks(id) ON DELETE CASCADE,
    parent_id   INTEGER REFERENCES revisions(id),
    batch_id    TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    author      TEXT,
    reason      TEXT,
    reverts     INTEGER REFERENCES revisions(id),
    created_at  TEXT    NOT NULL,
    n_added     INTEGER NOT NULL DEFAULT 0,
    n_changed   INTEGER NOT NULL DEFAULT 0,
    n_removed   INTEGER NOT NULL DEFAULT 0,
    n_tagged    INTEGER NOT NULL DEFAULT 0,
    n_sections  INTEGER NOT NULL DEFAULT 0,
    UNIQUE (playbook_id, batch_id)
);
CREATE INDEX revisions_playbook ON revisions (playbook_id, id);

CREATE TABLE revision_ops (
    revision_id INTEGER NOT NULL REFERENCES revisions(id) ON DELETE CASCADE,
    idx         INTEGER NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind IN ('bullet', 'section')),
    key         TEXT    NOT NULL,
    -- index of the batch operation that caused the change (NULL for reverts); the states say the rest
    op_index    INTEGER,
    -- bullet / section state as JSON written by ace itself (serde); NULL = did not exist
    before      TEXT,
    after       TEXT,
    PRIMARY KEY (revision_id, idx)
) WITHOUT ROWID;
-- the last revision that wrote each bullet: revert's conflict check is one lookup, no index on revision_ops
ALTER TABLE bullets ADD COLUMN last_revision INTEGER;
