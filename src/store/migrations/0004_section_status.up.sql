-- Sections can be removed softly, like bullets: the row stays so that removed bullets keep their
-- section and history can show it; a removed section is hidden from the playbook.
ALTER TABLE sections ADD COLUMN status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'removed'));
