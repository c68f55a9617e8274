-- Local-degraded mode on the cloud side (server/store.Reconciliation): the local commands nodes backfill
-- (once per command id), each node's local watermark, and the conflicts nodes report.

CREATE TABLE local_commands (
    node_id    text COLLATE "C" NOT NULL,
    command_id text COLLATE "C" NOT NULL,
    record     bytea NOT NULL,
    PRIMARY KEY (node_id, command_id)
);

CREATE TABLE local_watermarks (
    node_id text COLLATE "C" PRIMARY KEY,
    hlc     bytea NOT NULL
);

CREATE TABLE conflicts (
    conflict_id text COLLATE "C" PRIMARY KEY,
    status      text NOT NULL,
    record      bytea NOT NULL
);
CREATE INDEX conflicts_status ON conflicts (status, conflict_id);
