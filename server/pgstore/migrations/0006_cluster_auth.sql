-- Cluster authentication: the secrets every member shares, and split-mode enrollment state that must be
-- shared so consecutive RPCs of one node may land on different members.

-- Shared secrets (the org CA, the command-issuance keys, the enrollment secret). Private material is
-- sealed (AES-256-GCM, server/cloudcluster/secrets.go) under the key-encryption key every member is given;
-- kek_id names that key so a member holding another one fails with a clear error. A row is created once
-- (INSERT … ON CONFLICT DO NOTHING): members starting together all read the first writer's row. version
-- is raised by every compare-and-set update (key rotation).
CREATE TABLE cluster_secrets (
    name       text COLLATE "C" PRIMARY KEY,
    kek_id     text NOT NULL,
    public     bytea NOT NULL DEFAULT ''::bytea,
    sealed     bytea NOT NULL,
    version    bigint NOT NULL DEFAULT 1 CHECK (version > 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Enrollment codes (server/enroll.CodeRecord): only the HMAC id of a code, never the code. Times are Unix
-- nanoseconds, 0 for "not yet".
CREATE TABLE enroll_codes (
    code_id        text COLLATE "C" PRIMARY KEY,
    org_id         text COLLATE "C" NOT NULL,
    site           text NOT NULL DEFAULT '',
    created_ns     bigint NOT NULL,
    expires_ns     bigint NOT NULL,
    redeemed_ns    bigint NOT NULL DEFAULT 0,
    identity_key   bytea,
    finished_ns    bigint NOT NULL DEFAULT 0
);

-- Outstanding session challenges: taken once (DELETE … RETURNING), whichever member answers.
CREATE TABLE enroll_challenges (
    node_id    text COLLATE "C" NOT NULL,
    nonce      bytea NOT NULL,
    expires_ns bigint NOT NULL,
    n          bigserial,
    PRIMARY KEY (node_id, nonce)
);
CREATE INDEX enroll_challenges_expiry ON enroll_challenges (expires_ns);
