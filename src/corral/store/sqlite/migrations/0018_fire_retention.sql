-- corral schema, version 18: retention covers schedule fires and finished backfills. The pruner
-- reads its candidates oldest first from these indexes, so a run's cost follows its batch, never
-- how many fires a schedule has made (corral.retention: which fires may go).

CREATE INDEX corral_schedule_fires_made ON corral_schedule_fires (made_at);
CREATE INDEX corral_backfills_ended ON corral_backfills (updated_at)
    WHERE state IN ('done', 'cancelled');
