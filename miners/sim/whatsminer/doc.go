// Package whatsminer simulates MicroBT Whatsminer miners (btminer firmware) over real sockets: API v2 on one
// listener (4028 on a real miner; JSON, AES-256-ECB envelope for writes) and API v3 on another (4433;
// length-prefixed JSON, salted tokens), in front of a miners/sim CGMiner fleet that holds each miner's
// state (hashrate, temperatures, fans, pools, reboots) on the injected clock.
//
//	Start(Config) ─▶ Fleet ─┬─ sim.Fleet (state; its CGMiner port is internal)
//	                        └─ Miner ─┬─ v2 listener ─ JSON / {"enc":1,"data"} ─▶ token + AES check ─┐
//	                                  └─ v3 listener ─ frames ─▶ ts + salted token check ────────────┤
//	                                                                                                  ▼
//	                     reads: view of sim.Miner's Snapshot   writes: write-through to sim.Miner's API
//	                                                                    (restart, curtail sleep/wakeup, pools)
//
// Authentication is really checked. v2: get_token issues {time, salt, newsalt}; the miner keeps the key
// derived from its password and salt and accepts a write only when it decrypts under SHA-256(key) to JSON
// whose "token" is one it issued less than Config.TokenTTL ago (on Config.Clock); otherwise it answers, in
// the clear, {"STATUS":"E","Code":135,"Msg":"check token err"}. v3: "account" must be Config.Account, "ts"
// within Config.TSWindow of the clock, and "token" the salted token of the command; otherwise code -4.
//
// The miner's own state beyond miners/sim: the power limit (adjust_power_limit / set.miner.power_limit,
// which caps the reported power and scales hashrate), whether btminer is powered off (power_off is the sim
// miner's sleep), the locate LED (set_led / set.system.led; off after a reboot), error codes to report (SetErrors), and a write log of every write received — time,
// API version, command, parameters (passwords masked), remote address, accepted or why not.
//
// Faults (SetFault) make the replies hostile for driver tests: truncated JSON, a bad AES envelope, an
// oversized reply (a v3 frame announcing more than any client accepts), or a closed connection.
package whatsminer
