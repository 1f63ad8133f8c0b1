-- Prompts were made whole again before this script (src/store/transcripts.rs,
-- prompts_to_version_8); changes stored as patches are made whole here.
UPDATE revision_ops SET after = json_remove(json_patch(before, after), '$."~"')
 WHERE substr(after, 1, 6) = '{"~":1';
-- A batch's evidence holds the curator's reasoning again (stored as `true`: the batch's own).
UPDATE pending_batches SET provenance = json_set(provenance, '$.curator_reasoning', coalesce(reasoning, ''))
 WHERE json_valid(provenance) AND json_type(provenance, '$.curator_reasoning') = 'true';
