-- One row per leader lock key: the number of the current leadership term.
-- A replica that takes the lock moves term forward (TryLeader), and the
-- leader's writes check theirs against it, so a leader that lost its lock
-- session cannot write once another replica leads.
CREATE TABLE leader_terms (
    key  bigint PRIMARY KEY,
    term bigint NOT NULL CHECK (term > 0)
);
