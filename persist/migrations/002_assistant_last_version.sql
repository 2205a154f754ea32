-- 002_assistant_last_version.sql: the highest version number an assistant has written.
--
-- PATCH /assistants/{id} writes version last_version + 1. Taking the number from the assistants row
-- itself (UPDATE ... SET last_version = last_version + 1) makes concurrent PATCHes of one assistant
-- queue on its row lock, and each sees the row the previous one committed: no two compute the same
-- number, and none merges its metadata into a stale copy. (max(version) of assistant_versions read in
-- the same statement would come from a snapshot taken before the wait.) `version` stays the pinned
-- version, which POST /assistants/{id}/latest may move below last_version.

ALTER TABLE assistants ADD COLUMN last_version integer NOT NULL DEFAULT 1;
UPDATE assistants a
   SET last_version = (SELECT max(v.version) FROM assistant_versions v WHERE v.assistant_id = a.assistant_id)
 WHERE EXISTS (SELECT 1 FROM assistant_versions v WHERE v.assistant_id = a.assistant_id);
ALTER TABLE assistants ADD CONSTRAINT assistants_last_version_check CHECK (last_version >= version);
COMMENT ON COLUMN assistants.last_version IS
    'Highest version number written to assistant_versions; the next PATCH writes last_version + 1 (version is the pinned one).';
