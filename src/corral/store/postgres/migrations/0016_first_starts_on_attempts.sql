-- corral schema, version 16: the recent first starts (the read side's wait figures) are read
-- from the first attempts, not from an index on tasks.first_started_at. Every claim writes
-- first_started_at, and every update of a started task (no update of a task is heap-only: state
-- is in the partial indexes' predicates) wrote that index a new entry: three a task. An attempt
-- row is written once, by its claim; attempt 1's start is the task's first start. (On the
-- partitioned attempts, the index is made on each day's partition.)

DROP INDEX corral_tasks_started;
CREATE INDEX corral_attempts_first ON corral_attempts (started_at) WHERE attempt = 1;
