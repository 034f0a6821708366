-- corral schema, version 23: the failed attempts' index is partial on four equalities joined by
-- OR, not on `outcome IN (the four failed outcomes)`. SQLite codes a constant IN list of more than
-- two values as a lookup table built once per execution of a statement, and an insert or update
-- of corral_attempts evaluates the predicate of each partial index it may write: every claim's
-- INSERT and every completion's UPDATE of an attempt (one execution a row) built that table,
-- two to three microseconds a row, though nearly no attempt fails. The rows it holds are the
-- same; FAILED_ATTEMPTS names the predicate in the same words, so the planner still sees the
-- index serve it.

DROP INDEX corral_attempts_failed;
CREATE INDEX corral_attempts_failed ON corral_attempts (finished_at)
    WHERE outcome = 'failed' OR outcome = 'lost' OR outcome = 'timed_out' OR outcome = 'stalled';
