// Package whatsminer is the Driver for MicroBT Whatsminer miners (btminer firmware), over either of the
// firmware's public APIs, chosen by Config.APIVersion:
//
//	v2 (TCP 4028): one JSON command per connection. Reads in the clear: summary, edevs, pools, status,
//	    devdetails, get_miner_info, get_version, get_error_code. Writes (reboot, power_off, power_on,
//	    adjust_power_limit, update_pools, set_led) in the AES-256-ECB envelope {"enc":1,"data":...} with a token from
//	    get_token, both derived from the admin password (see wmapi).
//	v3 (TCP 4433): 4-byte little-endian length + JSON, one exchange per connection. Reads get.miner.status
//	    (summary, edevs, pools) and get.device.info; writes (set.system.reboot, set.miner.service,
//	    set.miner.power_limit, set.miner.pools, set.system.led) carry ts, account and the salted token.
//
//	Poll ─▶ summary ─▶ edevs ─▶ pools ─▶ status ─▶ errors (+ device info every Config.InfoTTL)
//	                       │ v2: JSON, bounded read to EOF/NUL    v3: frames, length checked first
//	     *pb.Telemetry ◀── reading (units: MH/s → TH/s in v2; v3 reports TH/s) ◀┘
//
// Tokens (v2) are reused for Config.TokenRefresh and fetched again when the miner answers 135 "check token
// err" to a reused one; a fresh token refused means the password is wrong (ErrBadPassword). The v3 salt is
// fetched once and again after a refused write.
//
// Commands: REBOOT, START_MINING (power_on / service start), STOP_MINING (power_off / service stop),
// SET_POWER_TARGET (power limit, watts), CURTAIL (power off; with PowerTargetW > 0 a lower power limit),
// UNCURTAIL (power on, then the command's power target or the limit saved by a partial curtailment),
// UPDATE_POOLS (1 to 3 pools), GET_POOLS, GET_ERRORS, BLINK (set_led / set.system.led: the red LED flashes;
// param "enable"="false" returns it to "auto").
//
// State: STOPPED when the miner reports btminer off (v2 status) or not working (v3), CURTAILED instead when
// this driver stopped or limited it for curtailment, MINING with a positive 5 s hashrate, ONLINE otherwise.
//
// Hostile replies: every exchange has one deadline (Config.ReadTimeout, or ctx's), replies are bounded
// (Config.MaxReplyBytes; a v3 frame announcing more is refused before its body is read), and anything
// unreadable — truncated JSON, a bad envelope, a reply of the wrong shape — is an error wrapping
// miners.ErrMalformed that names the command.
package whatsminer
