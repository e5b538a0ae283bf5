-- The model registry, the durable job queue and small key/value settings.
CREATE TABLE models (
  id              TEXT PRIMARY KEY,
  path            TEXT NOT NULL,              -- relative to the model dir
  size_bytes      INTEGER NOT NULL,
  sha256          TEXT NOT NULL,
  mtime_ms        INTEGER NOT NULL,
  source          TEXT NOT NULL CHECK (source IN ('scan', 'api')),
  state           TEXT NOT NULL DEFAULT 'unloaded'
                  CHECK (state IN ('unloaded', 'loading', 'loaded', 'unloading', 'failed')),
  last_error_code TEXT,
  last_error_msg  TEXT,
  inputs          TEXT,                       -- JSON, read from ONNX Runtime at load
  outputs         TEXT,
  providers       TEXT,                       -- JSON array overriding the global execution providers
  created_at      TEXT NOT NULL,
  updated_at      TEXT NOT NULL,
  loaded_at       TEXT
);

CREATE TABLE jobs (
  seq             INTEGER PRIMARY KEY AUTOINCREMENT,  -- claim order
  id              TEXT NOT NULL UNIQUE,
  kind            TEXT NOT NULL CHECK (kind IN ('load', 'unload')),
  model_id        TEXT NOT NULL,
  state           TEXT NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
  phase           TEXT,
  force           INTEGER NOT NULL DEFAULT 0,
  activate        INTEGER NOT NULL DEFAULT 1,
  error_code      TEXT,
  error_message   TEXT,
  requested_by    TEXT NOT NULL,
  idempotency_key TEXT,
  request_hash    TEXT,
  created_at      TEXT NOT NULL,
  started_at      TEXT,
  finished_at     TEXT
);
CREATE INDEX jobs_by_state ON jobs (state, seq);
CREATE INDEX jobs_by_model ON jobs (model_id, seq);
CREATE UNIQUE INDEX jobs_by_idempotency ON jobs (requested_by, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE settings (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

CREATE TABLE audit (
  seq         INTEGER PRIMARY KEY AUTOINCREMENT,
  at          TEXT NOT NULL,
  actor       TEXT NOT NULL,
  action      TEXT NOT NULL,
  target      TEXT,
  source_ip   TEXT,
  status      INTEGER NOT NULL,
  outcome     TEXT NOT NULL,
  request_id  TEXT
);
