-- corral schema, version 20: a task knows the schedule whose fire made it, so a task list
-- filtered by schedule is one walk of an index (newest first), not a read of the schedule's
-- fires. Written with the fire's tasks, in its transaction; the tasks of fires made before this
-- version get theirs from the fires' task ids.

ALTER TABLE corral_tasks ADD COLUMN schedule_name TEXT;
UPDATE corral_tasks SET schedule_name = (
    SELECT f.schedule_name FROM corral_schedule_fires f, json_each(f.task_ids) j
    WHERE j.value = corral_tasks.id ORDER BY f.made_at DESC LIMIT 1)
WHERE id IN (SELECT j.value FROM corral_schedule_fires f, json_each(f.task_ids) j);
CREATE INDEX corral_tasks_schedule ON corral_tasks (schedule_name, id)
    WHERE schedule_name IS NOT NULL;
