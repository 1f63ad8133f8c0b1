-- Playbooks, their ordered sections and bullets.
CREATE TABLE playbooks (
    id                 INTEGER PRIMARY KEY,
    name               TEXT    NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    created_at         TEXT    NOT NULL,
    -- the id counter: the next number handed out for a bullet id; it never decreases
    next_bullet_number INTEGER NOT NULL DEFAULT 1 CHECK (next_bullet_number >= 1),
    -- order keys for sections and bullets; they never decrease either
    next_position      INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE sections (
    id          INTEGER PRIMARY KEY,
    playbook_id INTEGER NOT NULL REFERENCES playbooks(id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    slug        TEXT    NOT NULL,
    position    INTEGER NOT NULL,
    UNIQUE (playbook_id, name)
);

CREATE TABLE bullets (
    pk          INTEGER PRIMARY KEY,
    playbook_id INTEGER NOT NULL REFERENCES playbooks(id) ON DELETE CASCADE,
    bullet_id   TEXT    NOT NULL,
    section_id  INTEGER NOT NULL REFERENCES sections(id),
    position    INTEGER NOT NULL,
    content     TEXT    NOT NULL,
    helpful     INTEGER NOT NULL DEFAULT 0 CHECK (helpful >= 0),
    harmful     INTEGER NOT NULL DEFAULT 0 CHECK (harmful >= 0),
    neutral     INTEGER NOT NULL DEFAULT 0 CHECK (neutral >= 0),
    metadata    TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
    status      TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'removed')),
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL,
    UNIQUE (playbook_id, bullet_id)
);
CREATE INDEX bullets_section_created ON bullets (section_id, created_at);
