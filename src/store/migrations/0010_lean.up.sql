-- What each sample adds is kept lean:
-- * `blobs` is written in the order texts arrive (a row id), found by hash through an index: rows
--   keyed by a hash landed all over the table and left its pages a third empty;
-- * a bullet's state before a change may be what differs from the state it was created with (a
--   JSON merge patch marked {"~":2,"@":[revision, idx],...} naming the op that created it, whose
--   state after is always whole; see `rows::OP_BEFORE`), so a counter moved does not store the
--   bullet's text again; the creating ops are indexed by key;
-- * a sample's reflection may be what differs from the answer of its reflector call (marked
--   {"~":3,"~c":ID,...}: the call's row id in `llm_calls`; see `rows::REFLECTION`), so the
--   reflection is not stored twice; pruning a run's calls makes its reflections whole first;
-- * a revision made from a queued batch keeps no reason of its own when it is the batch's reasoning
--   (NULL; read from the batch, see `read::REVISION_COLUMNS`);
-- * a call's `playbook_view` uses short names ({"r":7,"c":true,"row":true}).
-- Version 9 reads none of these; going down makes them whole again.
CREATE TABLE blobs_v10 (
    id   INTEGER PRIMARY KEY,
    hash INTEGER NOT NULL UNIQUE,
    body BLOB    NOT NULL
);
INSERT INTO blobs_v10 (hash, body) SELECT hash, body FROM blobs ORDER BY rowid;
DROP TABLE blobs;
ALTER TABLE blobs_v10 RENAME TO blobs;

CREATE INDEX revision_ops_created ON revision_ops (key, revision_id) WHERE before IS NULL AND kind = 'bullet';
