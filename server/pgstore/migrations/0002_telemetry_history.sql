-- Telemetry history: every sample, range-partitioned by observation time into one partition per UTC day
-- (created ahead by EnsureHistoryPartitions, dropped whole by ApplyRetention). Rows outside every partition
-- land in the default partition, which retention also trims.

CREATE TABLE telemetry_history (
    miner_id    text COLLATE "C" NOT NULL,
    node_id     text COLLATE "C" NOT NULL DEFAULT '',
    observed_at timestamptz NOT NULL,
    record      bytea NOT NULL
) PARTITION BY RANGE (observed_at);

CREATE TABLE telemetry_history_default PARTITION OF telemetry_history DEFAULT;
CREATE INDEX telemetry_history_miner_time ON telemetry_history (miner_id, observed_at);
