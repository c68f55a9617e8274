-- The command id of every sent command, so a command issued again under the same id (a retried request
-- whose first answer was lost, possibly on another member) is found instead of sent twice under a new seq.
ALTER TABLE node_sent ADD COLUMN command_id text COLLATE "C";
CREATE INDEX node_sent_command ON node_sent (node_id, command_id);
