package sealing

// PurposeMinerLoginNew is a miner login being rotated in (ACTION_UPDATE_PASSWORD): sealed to the owning
// nodes in the command's spec; it becomes the device's PurposeMinerLogin only once the miner confirmed it.
const PurposeMinerLoginNew = "miner-login-new"
