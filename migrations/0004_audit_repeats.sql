-- Refused calls (401, 403) of one caller from one address are recorded at most once
-- a minute; an entry counts here the refusals folded into it since that caller's
-- entry before it.
ALTER TABLE audit ADD COLUMN repeats INTEGER NOT NULL DEFAULT 0 CHECK (repeats >= 0);
