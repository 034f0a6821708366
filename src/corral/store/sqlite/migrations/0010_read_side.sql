-- corral schema, version 10 (SQLite): the read side (corral.readside). Each page of a task
-- list is one ordered index scan, newest first, that stops at the page's end: by state, type,
-- group or workflow, each with the id as the keyset key. The recent queue waits come from the
-- tasks that started in a bounded window (an index on the first start), never from all of
-- history. Counts of unfinished tasks read the (state, id) index over the unfinished states.

CREATE INDEX corral_tasks_state_id ON corral_tasks (state, id);
CREATE INDEX corral_tasks_name_id ON corral_tasks (name, id);
CREATE INDEX corral_tasks_group_id ON corral_tasks (group_name, id);
DROP INDEX corral_tasks_workflow;
CREATE INDEX corral_tasks_workflow ON corral_tasks (workflow_id, id) WHERE workflow_id IS NOT NULL;
CREATE INDEX corral_tasks_started ON corral_tasks (first_started_at)
    WHERE first_started_at IS NOT NULL;
