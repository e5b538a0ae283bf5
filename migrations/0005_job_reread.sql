-- A load that takes the version's file as it is now (Triton's repository load):
-- a serving version whose file changed since it was registered is reloaded from
-- it, instead of the change going unread.
ALTER TABLE jobs ADD COLUMN reread INTEGER NOT NULL DEFAULT 0 CHECK (reread IN (0, 1));
