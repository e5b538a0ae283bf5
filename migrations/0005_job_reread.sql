-- A load that takes the version's file as it is now (Triton's repository load):
-- a serving version whose file changed since it was registered is reloaded from
-- it, instead of the change going unread.
ALTER TABLE jobs ADD COLUMN reread INTEGER NOT NULL DEFAULT 0 CHECK (reread IN (0, 1));

-- The change log's job snapshot names every column the job API shows, reread included.
DROP VIEW job_snapshots;
CREATE VIEW job_snapshots AS
  SELECT id, model_id, requested_by,
         json_object('seq', seq, 'id', id, 'kind', kind, 'model_id', model_id, 'version', version,
           'state', state, 'phase', phase, 'timeline', timeline, 'outcome', outcome, 'reason', reason,
           'force', force, 'activate', activate, 'reread', reread, 'error_code', error_code, 'error_message', error_message,
           'requested_by', requested_by, 'created_at', created_at, 'started_at', started_at, 'finished_at', finished_at) AS payload
  FROM jobs;
