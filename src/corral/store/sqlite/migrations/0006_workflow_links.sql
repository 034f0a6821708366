-- corral schema, version 6 (SQLite): the tasks a workflow relies on that are not its own. A step
-- whose dedup key an unfinished task already held is that task (of no workflow, or of another):
-- the workflow's state and progress count it beside its own tasks.

CREATE TABLE workflow_links (
    workflow_id INTEGER NOT NULL REFERENCES workflows (id),
    task_id     INTEGER NOT NULL REFERENCES tasks (id),
    PRIMARY KEY (workflow_id, task_id)
) WITHOUT ROWID;
