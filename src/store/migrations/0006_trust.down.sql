DROP INDEX bullets_content;
ALTER TABLE revisions DROP COLUMN ops_hash;
