-- Memory: what a loaded file really costs, measured once and reused as the
-- estimate for the next load of the same bytes (keyed by sha256).
CREATE TABLE footprints (
  sha256      TEXT PRIMARY KEY,
  bytes       INTEGER NOT NULL CHECK (bytes >= 0),
  measured_at TEXT NOT NULL
);

-- The measured footprint of a version while it is loaded; NULL otherwise.
ALTER TABLE model_versions ADD COLUMN memory_bytes INTEGER;

-- Why a job exists when no person asked for it: {"kind":"evicted","for":"m@2"} or {"kind":"idle"}.
ALTER TABLE jobs ADD COLUMN reason TEXT;

-- Every job and model change, in commit order, for GET /api/v1/events. Written by
-- triggers in the same transaction as the change, so a stream resumed with
-- Last-Event-ID misses nothing.
CREATE TABLE events (
  seq          INTEGER PRIMARY KEY AUTOINCREMENT,
  at           TEXT NOT NULL,
  kind         TEXT NOT NULL CHECK (kind IN ('job', 'model')),
  job_id       TEXT,
  model_id     TEXT NOT NULL,
  requested_by TEXT,                           -- a job's creator: who else may see the event
  payload      TEXT NOT NULL                   -- JSON: the job row, or the model's changed state
);
CREATE INDEX events_by_job ON events (job_id, seq);

-- A job row as JSON, read back from the table so every column is plain text.
CREATE VIEW job_snapshots AS
  SELECT id, model_id, requested_by,
         json_object('seq', seq, 'id', id, 'kind', kind, 'model_id', model_id, 'version', version,
           'state', state, 'phase', phase, 'timeline', timeline, 'outcome', outcome, 'reason', reason,
           'force', force, 'activate', activate, 'error_code', error_code, 'error_message', error_message,
           'requested_by', requested_by, 'created_at', created_at, 'started_at', started_at, 'finished_at', finished_at) AS payload
  FROM jobs;

CREATE TRIGGER job_inserted AFTER INSERT ON jobs BEGIN
  INSERT INTO events (at, kind, job_id, model_id, requested_by, payload)
  SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 'job', id, model_id, requested_by, payload FROM job_snapshots WHERE id = NEW.id;
END;

CREATE TRIGGER job_updated AFTER UPDATE ON jobs BEGIN
  INSERT INTO events (at, kind, job_id, model_id, requested_by, payload)
  SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 'job', id, model_id, requested_by, payload FROM job_snapshots WHERE id = NEW.id;
END;

CREATE TRIGGER model_changed AFTER UPDATE OF state, serving_version ON models
WHEN OLD.state IS NOT NEW.state OR OLD.serving_version IS NOT NEW.serving_version BEGIN
  INSERT INTO events (at, kind, model_id, payload)
  VALUES (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 'model', NEW.id,
          json_object('modelId', NEW.id, 'state', NEW.state, 'servingVersion', CAST(NEW.serving_version AS TEXT),
            'error', CASE WHEN NEW.last_error_code IS NULL THEN NULL ELSE json_object('code', NEW.last_error_code, 'message', NEW.last_error_msg) END));
END;

CREATE TRIGGER version_changed AFTER UPDATE OF state, memory_bytes ON model_versions
WHEN OLD.state IS NOT NEW.state OR OLD.memory_bytes IS NOT NEW.memory_bytes BEGIN
  INSERT INTO events (at, kind, model_id, payload)
  VALUES (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 'model', NEW.model_id,
          json_object('modelId', NEW.model_id, 'version', CAST(NEW.version AS TEXT), 'versionState', NEW.state, 'memoryBytes', NEW.memory_bytes,
            'error', CASE WHEN NEW.last_error_code IS NULL THEN NULL ELSE json_object('code', NEW.last_error_code, 'message', NEW.last_error_msg) END));
END;
