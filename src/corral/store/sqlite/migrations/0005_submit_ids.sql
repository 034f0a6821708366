-- corral schema, version 5 (SQLite): submit ids. Each task written by a submit call carries the
-- call's id and its position in the call; a workflow the call's id. A submit that names an id
-- already written gets the tasks written then instead of new ones (any state, terminal included).
-- Rows written before this version have none (NULL), which the indexes leave out.

ALTER TABLE tasks ADD COLUMN submit_id TEXT;
CREATE UNIQUE INDEX tasks_submit ON tasks (submit_id) WHERE submit_id IS NOT NULL;

ALTER TABLE workflows ADD COLUMN submit_id TEXT;
CREATE UNIQUE INDEX workflows_submit ON workflows (submit_id) WHERE submit_id IS NOT NULL;
