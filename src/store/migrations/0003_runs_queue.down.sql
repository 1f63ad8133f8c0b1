DROP TABLE pending_ops;
DROP TABLE pending_batches;
DROP TABLE run_metrics;
DROP TABLE bullet_citations;
DROP TABLE llm_calls;
DROP TABLE run_samples;
DROP TABLE runs;
