-- Umbra node storage, schema version 2: tombstone proofs.
-- Spec: shared/spec/swarms.md section 6 ("Deletions are caught up too").
--
-- A tombstone carries the account owner's signed client request that caused
-- it (the `{"method","params"}` JSON the node validated), so the swarm peers
-- it is pushed to can check the deletion themselves instead of trusting the
-- member that sent it. Many tombstones of one request (a delete_all) share
-- one proof row; `digest` is the BLAKE2b-256 of `request`.
--
-- Tombstones made before this migration have no proof (`proof_id` NULL):
-- they still block a pushed copy here, and their peers ignore them.

CREATE TABLE tombstone_proofs (
    id      INTEGER PRIMARY KEY,
    digest  BLOB    NOT NULL UNIQUE CHECK (length(digest) = 32),
    request BLOB    NOT NULL
);

ALTER TABLE tombstones ADD COLUMN proof_id INTEGER REFERENCES tombstone_proofs (id);
CREATE INDEX tombstones_proof ON tombstones (proof_id);
