-- Umbra node storage, schema version 3: the timestamp bound of a tombstone.
-- Spec: shared/spec/swarms.md section 6 ("Deletions are caught up too").
--
-- A tombstone taken from a peer on the strength of a namespace-wide request
-- (delete_all, delete_before, expire_all, a public-outbox store) covers only
-- messages timestamped up to what that request allows. `max_timestamp` keeps
-- that bound, so such a tombstone never blocks or shortens a later pushed
-- message the request did not cover. NULL: no bound (the node's own
-- deletions, which name exactly the rows they removed, and `delete` /
-- `expire` tombstones, which name their hash).

ALTER TABLE tombstones ADD COLUMN max_timestamp INTEGER;
