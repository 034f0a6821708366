-- corral schema, version 16: the recent first starts (the read side's wait figures) are read
-- from the first attempts, not from an index on tasks.first_started_at. Every claim writes
-- first_started_at (coalesce keeps the first value, but an UPDATE that names a column rewrites
-- its index entries), so that index cost each claim more than the rest of the claim's update
-- (SQLite: 26 -> 10 us a row, benchmarks/transition_sql.py). An attempt row is written once, by
-- its claim; attempt 1's start is the task's first start.

DROP INDEX corral_tasks_started;
CREATE INDEX corral_attempts_first ON corral_attempts (started_at) WHERE attempt = 1;
