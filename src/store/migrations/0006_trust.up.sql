-- What a revision's batch said (FNV-1a 64 of its operations' JSON, as a signed integer): a batch id
-- applied again with other operations is refused instead of passing for "already applied".
ALTER TABLE revisions ADD COLUMN ops_hash INTEGER;
