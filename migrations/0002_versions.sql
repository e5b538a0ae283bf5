-- Versions: a model id has numbered versions, each with its own file, state and
-- I/O metadata. The model row keeps what is model-wide: its state, the version
-- serving unversioned requests, and its settings.

-- Rebuilt rather than altered: SQLite cannot drop columns that a CHECK names.
CREATE TABLE models_v2 (
  id              TEXT PRIMARY KEY,
  source          TEXT NOT NULL CHECK (source IN ('scan', 'api')),
  state           TEXT NOT NULL DEFAULT 'unloaded'
                  CHECK (state IN ('unloaded', 'loading', 'loaded', 'unloading', 'failed')),
  last_error_code TEXT,
  last_error_msg  TEXT,
  serving_version INTEGER,                    -- answers unversioned requests; NULL when nothing serves
  settings        TEXT NOT NULL DEFAULT '{}', -- JSON: warmup, providers, …
  created_at      TEXT NOT NULL,
  updated_at      TEXT NOT NULL,
  loaded_at       TEXT
);
INSERT INTO models_v2 (id, source, state, last_error_code, last_error_msg, serving_version, settings, created_at, updated_at, loaded_at)
  SELECT id, source, state, last_error_code, last_error_msg,
         CASE WHEN state IN ('loaded', 'loading', 'unloading') THEN 1 END,
         CASE WHEN providers IS NULL THEN '{}' ELSE json_object('providers', json(providers)) END,
         created_at, updated_at, loaded_at
  FROM models;
CREATE TEMP TABLE versions_from_v1 AS
  SELECT id AS model_id, 1 AS version, path, size_bytes, sha256, mtime_ms, NULL AS stat_identity, source, state,
         last_error_code, last_error_msg, inputs, outputs, created_at, updated_at, loaded_at
  FROM models;
DROP TABLE models;
ALTER TABLE models_v2 RENAME TO models;

CREATE TABLE model_versions (
  model_id        TEXT NOT NULL REFERENCES models (id) ON DELETE CASCADE,
  version         INTEGER NOT NULL CHECK (version > 0),
  path            TEXT NOT NULL,              -- relative to the model dir
  size_bytes      INTEGER NOT NULL,
  sha256          TEXT NOT NULL,
  mtime_ms        INTEGER NOT NULL,
  stat_identity   TEXT,                       -- dev:ino:size:mtime_ns:ctime_ns when sha256 was computed
  source          TEXT NOT NULL CHECK (source IN ('scan', 'api')),
  state           TEXT NOT NULL DEFAULT 'unloaded'
                  CHECK (state IN ('unloaded', 'loading', 'loaded', 'unloading', 'failed')),
  last_error_code TEXT,
  last_error_msg  TEXT,
  inputs          TEXT,                       -- JSON, read from ONNX Runtime at load
  outputs         TEXT,
  created_at      TEXT NOT NULL,
  updated_at      TEXT NOT NULL,
  loaded_at       TEXT,
  PRIMARY KEY (model_id, version)
);
INSERT INTO model_versions SELECT * FROM versions_from_v1;
DROP TABLE versions_from_v1;

-- A job's progress (phase) and its result (outcome) are two typed fields.
ALTER TABLE jobs ADD COLUMN version INTEGER;   -- the version a load targets
ALTER TABLE jobs ADD COLUMN outcome TEXT;      -- JSON, set when the job completes
ALTER TABLE jobs ADD COLUMN timeline TEXT NOT NULL DEFAULT '[]'; -- JSON [{phase, at}]
UPDATE jobs SET outcome = json_object('summary', phase) WHERE state = 'completed' AND phase IS NOT NULL;
UPDATE jobs SET phase = CASE WHEN state IN ('pending', 'running') THEN 'queued' END;
UPDATE jobs SET version = 1 WHERE kind = 'load';
