-- Reflections and states before a change are made whole again (in this order: a reflection names
-- a call, a state names the op that created the bullet, which stays whole).
UPDATE run_samples SET reflection = json_remove(json_patch(
        (SELECT c.response FROM llm_calls c WHERE c.id = json_extract(run_samples.reflection, '$."~c"')
            AND c.run_id = run_samples.run_id AND c.sample_key = run_samples.key),
        reflection), '$."~"', '$."~c"')
 WHERE substr(reflection, 1, 6) = '{"~":3';
UPDATE revision_ops SET before = json_remove(json_patch(
        (SELECT b.after FROM revision_ops b
          WHERE b.revision_id = json_extract(revision_ops.before, '$."@"[0]')
            AND b.idx = json_extract(revision_ops.before, '$."@"[1]')),
        before), '$."~"', '$."@"')
 WHERE substr(before, 1, 6) = '{"~":2';
DROP INDEX revision_ops_created;
-- A revision made from a queued batch holds the batch's reasoning again.
UPDATE revisions SET reason = (SELECT b.reasoning FROM pending_batches b
        WHERE b.id = CAST(substr(revisions.batch_id, 7) AS INTEGER) AND b.revision_id = revisions.id)
 WHERE reason IS NULL AND batch_id LIKE 'queue-%';
-- Views of the playbook a prompt carried get their long names back.
UPDATE llm_calls SET playbook_view = json_remove(json_set(playbook_view,
        '$.revision', json_extract(playbook_view, '$.r'),
        '$.counters', json(CASE WHEN json_extract(playbook_view, '$.c') THEN 'true' ELSE 'false' END)),
        '$.r', '$.c')
 WHERE json_valid(playbook_view) AND json_type(playbook_view, '$.r') IS NOT NULL;
UPDATE llm_calls SET playbook_view = json_remove(json_set(playbook_view, '$.bullets', json(json_extract(playbook_view, '$.b'))), '$.b')
 WHERE json_valid(playbook_view) AND json_type(playbook_view, '$.b') IS NOT NULL;

CREATE TABLE blobs_v9 (
    hash INTEGER PRIMARY KEY,
    body BLOB NOT NULL
);
INSERT INTO blobs_v9 (hash, body) SELECT hash, body FROM blobs;
DROP TABLE blobs;
ALTER TABLE blobs_v9 RENAME TO blobs;
