-- Warm-standby pairs: a node and a device belong to at most one pair. The primary keys below are the claim:
-- of two declarations naming one device (on one member or two), exactly one commits. Rows go with their
-- pair. Pairs stored before this migration claim their members and devices here (first pair by id wins).
CREATE TABLE pair_members (
    node_id text COLLATE "C" PRIMARY KEY,
    pair_id text COLLATE "C" NOT NULL REFERENCES pairs (pair_id) ON DELETE CASCADE
);
CREATE INDEX pair_members_pair ON pair_members (pair_id);

CREATE TABLE pair_devices (
    miner_id text COLLATE "C" PRIMARY KEY,
    pair_id  text COLLATE "C" NOT NULL REFERENCES pairs (pair_id) ON DELETE CASCADE
);
CREATE INDEX pair_devices_pair ON pair_devices (pair_id);

INSERT INTO pair_members (node_id, pair_id)
    SELECT m.node_id, p.pair_id FROM pairs p, jsonb_array_elements_text(p.record -> 'members') AS m (node_id)
    WHERE m.node_id <> '' ORDER BY p.pair_id ON CONFLICT DO NOTHING;
INSERT INTO pair_devices (miner_id, pair_id)
    SELECT d.miner_id, p.pair_id FROM pairs p,
        jsonb_array_elements_text(CASE WHEN jsonb_typeof(p.record -> 'devices') = 'array' THEN p.record -> 'devices' ELSE '[]'::jsonb END) AS d (miner_id)
    ORDER BY p.pair_id ON CONFLICT DO NOTHING;

-- Sites (server/store.Sites): each site's signed automation policy (pb.SitePolicy) and each node's latest
-- curtailment status (pb.CurtailStatus).
CREATE TABLE site_policies (
    site       text COLLATE "C" PRIMARY KEY,
    record     bytea NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE curtail_status (
    node_id    text COLLATE "C" PRIMARY KEY,
    record     bytea NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
