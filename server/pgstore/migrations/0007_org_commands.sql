-- Operator commands issued through an org's Org grain in a cloud cluster (server/cloudcluster). The command's
-- record (every miner PENDING) is in commands; these tables hold what the grains of several members share.

-- One row per org command: the idempotency key is unique per org (commands.idempotency_key stays NULL for
-- these, keys of different orgs never collide). open_miners counts miners without a final result; the
-- transaction that brings it to 0 writes the finished record.
CREATE TABLE org_commands (
    command_id      text COLLATE "C" PRIMARY KEY REFERENCES commands (command_id),
    org_id          text COLLATE "C" NOT NULL,
    idempotency_key text COLLATE "C",
    created_at_ms   bigint NOT NULL,
    deadline_ms     bigint NOT NULL,
    open_miners     integer NOT NULL CHECK (open_miners >= 0),
    active          boolean NOT NULL DEFAULT true
);
CREATE UNIQUE INDEX org_commands_idem ON org_commands (org_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX org_commands_active ON org_commands (org_id) WHERE active;

-- Each owning node's part of an org command and the seq its Node grain queued it under (0 until queued).
CREATE TABLE command_parts (
    command_id text COLLATE "C" NOT NULL REFERENCES org_commands (command_id),
    node_id    text COLLATE "C" NOT NULL,
    seq        bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (command_id, node_id)
);

-- One row per (command, miner), written by the miner's Miner grain only, each write conditional on the row
-- not being final yet: a result is applied once and a final result never changes.
CREATE TABLE command_results (
    command_id     text COLLATE "C" NOT NULL REFERENCES org_commands (command_id),
    miner_id       text COLLATE "C" NOT NULL,
    node_id        text COLLATE "C" NOT NULL,
    code           integer NOT NULL,
    final          boolean NOT NULL DEFAULT false,
    message        text NOT NULL DEFAULT '',
    started_at_ms  bigint NOT NULL DEFAULT 0,
    finished_at_ms bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (command_id, miner_id)
);
CREATE INDEX command_results_open ON command_results (miner_id) WHERE NOT final;
CREATE INDEX command_results_part ON command_results (command_id, node_id);
