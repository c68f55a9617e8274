-- hashfleet cloud store: the records of server/store.Store and server/lease.Store, shared by every member.
-- Values are protobuf encodings (messages/proto/hashfleet/v1/store.proto); ids sort bytewise (COLLATE "C")
-- so listings come out in the same order as the Badger store's key order.

CREATE TABLE orgs (
    org_id     text COLLATE "C" PRIMARY KEY,
    name       text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Enrollment records (pb.NodeRecord).
CREATE TABLE nodes (
    node_id    text COLLATE "C" PRIMARY KEY,
    org_id     text COLLATE "C" NOT NULL DEFAULT '',
    record     bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Ownership: the device registry, miner -> owning node (pb.Device).
CREATE TABLE devices (
    miner_id text COLLATE "C" PRIMARY KEY,
    node_id  text COLLATE "C" NOT NULL DEFAULT '',
    record   bytea NOT NULL
);
CREATE INDEX devices_node ON devices (node_id);

-- Devices a node reported that no operator paired yet.
CREATE TABLE pending_devices (
    node_id  text COLLATE "C" NOT NULL,
    miner_id text COLLATE "C" NOT NULL,
    record   bytea NOT NULL,
    PRIMARY KEY (node_id, miner_id)
);

-- Latest sample per miner (pb.Telemetry).
CREATE TABLE telemetry_latest (
    miner_id       text COLLATE "C" PRIMARY KEY,
    observed_at_ms bigint NOT NULL DEFAULT 0,
    record         bytea NOT NULL
);

-- Ingest dedup marks: highest batch_seq applied per stream kind and node.
CREATE TABLE marks (
    kind    text COLLATE "C" NOT NULL,
    node_id text COLLATE "C" NOT NULL,
    seq     bigint NOT NULL,
    PRIMARY KEY (kind, node_id)
);

-- Operator commands (pb.CommandRecord).
CREATE TABLE commands (
    command_id      text COLLATE "C" PRIMARY KEY,
    idempotency_key text COLLATE "C",
    active          boolean NOT NULL,
    record          bytea NOT NULL
);
CREATE UNIQUE INDEX commands_idem ON commands (idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX commands_active ON commands (command_id) WHERE active;

-- Per-node command seq counters: the last seq allocated to each node. Only ever raised.
CREATE TABLE node_seq (
    node_id text COLLATE "C" PRIMARY KEY,
    seq     bigint NOT NULL CHECK (seq >= 0)
);

-- Each node's command queue (commands without a final report), and every signed command ever sent. The
-- primary key on (node, seq) of node_sent is the fence against two activations of one Node grain sending
-- two commands under one seq.
CREATE TABLE node_queue (
    node_id text COLLATE "C" NOT NULL,
    seq     bigint NOT NULL,
    command bytea NOT NULL,
    PRIMARY KEY (node_id, seq)
);
CREATE TABLE node_sent (
    node_id text COLLATE "C" NOT NULL,
    seq     bigint NOT NULL,
    command bytea NOT NULL,
    sent_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (node_id, seq)
);

-- Nodes' CommandGate audit records (pb.AuditRecord), ordered by time then arrival.
CREATE TABLE audit (
    node_id  text COLLATE "C" NOT NULL,
    at_ms    bigint NOT NULL,
    n        bigserial,
    record   bytea NOT NULL,
    PRIMARY KEY (node_id, at_ms, n)
);

-- Commissioning: discovery scans and pairings (ids sort by time).
CREATE TABLE scans (
    scan_id text COLLATE "C" PRIMARY KEY,
    record  bytea NOT NULL
);
CREATE TABLE pairings (
    pairing_id text COLLATE "C" PRIMARY KEY,
    record     bytea NOT NULL
);

-- Warm-standby pairs as declared by operators (server/store.PairRecord as JSON).
CREATE TABLE pairs (
    pair_id     text COLLATE "C" PRIMARY KEY,
    org_id      text COLLATE "C" NOT NULL DEFAULT '',
    record      jsonb NOT NULL,
    declared_at timestamptz NOT NULL DEFAULT now()
);

-- Lease state per pair; every write is a compare-and-set on version (server/lease.Store).
CREATE TABLE leases (
    pair_id        text COLLATE "C" PRIMARY KEY,
    holder         text COLLATE "C" NOT NULL DEFAULT '',
    epoch          bigint NOT NULL CHECK (epoch >= 0),
    expires_at_ns  bigint NOT NULL DEFAULT 0,
    member_a       text COLLATE "C" NOT NULL DEFAULT '',
    member_b       text COLLATE "C" NOT NULL DEFAULT '',
    version        bigint NOT NULL CHECK (version > 0),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Every epoch ever issued, with its holder: the primary key makes issuing one epoch to two holders
-- impossible, whatever the lease actors decide.
CREATE TABLE lease_epochs (
    pair_id   text COLLATE "C" NOT NULL,
    epoch     bigint NOT NULL,
    holder    text COLLATE "C" NOT NULL,
    issued_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (pair_id, epoch)
);

-- Server security events (JSON), in time order.
CREATE TABLE security_events (
    n      bigserial PRIMARY KEY,
    at     timestamptz NOT NULL,
    event  jsonb NOT NULL
);
