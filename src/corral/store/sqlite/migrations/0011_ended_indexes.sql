-- corral schema, version 11: the read side's indexes on tasks cover the ended tasks only. Every
-- change of a task's state is an update that writes an entry in each index covering every row
-- (state is in the predicates of the partial indexes, so no update is heap-only): the full
-- (state, id), (name, id) and (group_name, id) of version 10 cost the drain a quarter of the
-- server's time. An ended task is written to these once; the unfinished part of a page is read
-- from the unfinished tasks (the hot path's own partial indexes, one per state), which the
-- backlog bounds.

DROP INDEX corral_tasks_state_id;
DROP INDEX corral_tasks_name_id;
DROP INDEX corral_tasks_group_id;
CREATE INDEX corral_tasks_ended_state ON corral_tasks (state, id)
    WHERE state IN ('succeeded', 'dead', 'cancelled', 'upstream_failed');
CREATE INDEX corral_tasks_ended_name ON corral_tasks (name, id)
    WHERE state IN ('succeeded', 'dead', 'cancelled', 'upstream_failed');
CREATE INDEX corral_tasks_ended_group ON corral_tasks (group_name, id)
    WHERE state IN ('succeeded', 'dead', 'cancelled', 'upstream_failed');
