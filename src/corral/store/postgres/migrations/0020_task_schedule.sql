-- corral schema, version 20: a task knows the schedule whose fire made it, so a task list
-- filtered by schedule is one walk of an index (newest first), not a read of the schedule's
-- fires. Written with the fire's tasks, in its transaction; the tasks of fires made before this
-- version get theirs from the fires' task ids.

ALTER TABLE corral_tasks ADD COLUMN schedule_name TEXT;
UPDATE corral_tasks t SET schedule_name = f.schedule_name
FROM corral_schedule_fires f, jsonb_array_elements_text(f.task_ids::jsonb) AS j(id)
WHERE t.id = j.id::bigint;
CREATE INDEX corral_tasks_schedule ON corral_tasks (schedule_name, id)
    WHERE schedule_name IS NOT NULL;
