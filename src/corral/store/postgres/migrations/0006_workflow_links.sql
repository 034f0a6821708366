-- corral schema, version 6 (PostgreSQL): the tasks a workflow relies on that are not its own. A
-- step whose dedup key an unfinished task already held is that task (of no workflow, or of
-- another): the workflow's state and progress count it beside its own tasks.

CREATE TABLE corral_workflow_links (
    workflow_id BIGINT NOT NULL,
    task_id     BIGINT NOT NULL,
    PRIMARY KEY (workflow_id, task_id)
);
