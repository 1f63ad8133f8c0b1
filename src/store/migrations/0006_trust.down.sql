ALTER TABLE revisions DROP COLUMN ops_hash;
