DROP TABLE trial_answers;
DROP INDEX trials_batch;
DROP TABLE trials;
