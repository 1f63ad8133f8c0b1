-- Records that grow with every sample keep only what is not stored elsewhere (no table changes):
-- * a prompt message made from a template is stored as the template (in `blobs`) and its values,
--   each naming the texts the run already holds (the sample's question, ground truth, feedback,
--   an earlier call's answer or one of its fields, a batch sample's reflection) instead of
--   repeating them; `llm_calls.prompt` may be the key of the whole stored prompt in `blobs`;
-- * `revision_ops.after` may be what changed from `before` (a JSON merge patch marked {"~":1,...});
-- * `pending_batches.provenance` holds `"curator_reasoning": true` when it is the batch's reasoning.
-- Version 8 reads none of these; going down makes them whole again.
SELECT 1;
