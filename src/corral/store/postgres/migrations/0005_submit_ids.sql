-- corral schema, version 5 (PostgreSQL): submit ids. Each task written by a submit call carries
-- the call's id and its position in the call; a workflow the call's id. A retry of the call after
-- a lost reply finds what the first try wrote instead of writing it twice (any state, terminal
-- included). Rows written before this version have none (NULL), which the indexes leave out.

ALTER TABLE corral_tasks ADD COLUMN submit_id TEXT;
CREATE UNIQUE INDEX corral_tasks_submit ON corral_tasks (submit_id) WHERE submit_id IS NOT NULL;

ALTER TABLE corral_workflows ADD COLUMN submit_id TEXT;
CREATE UNIQUE INDEX corral_workflows_submit ON corral_workflows (submit_id)
    WHERE submit_id IS NOT NULL;
