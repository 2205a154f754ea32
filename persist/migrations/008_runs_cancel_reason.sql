-- 008_runs_cancel_reason.sql: why a cancel ended a run (Run.cancel_reason of the SDKs, NULL when no
-- cancel did): "user" (a cancel request), "taken:<who>" (a cancel with reason "taken": its input was
-- absorbed for steering), "multitask" (a run accepted with multitask_strategy interrupt) or
-- "disconnect" (the client that watched it left). Older rows have none.

ALTER TABLE runs ADD COLUMN IF NOT EXISTS cancel_reason text;
