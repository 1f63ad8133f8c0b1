ALTER TABLE bullets DROP COLUMN last_revision;
DROP TABLE revision_ops;
DROP TABLE revisions;
