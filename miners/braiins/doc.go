// Package braiins is the Driver for miners running Braiins OS: reads over its cgminer-compatible API (TCP
// 4028, through miners/cgminer), writes over its gRPC public API (TCP 50051; the subset in bospb).
//
//	Poll ────▶ cgminer.Driver ──TCP 4028──▶ bosminer API (summary+stats+pools)
//	Execute ─▶ Login (once per token) ─▶ gRPC call, metadata authorization: <token> ──TCP 50051──▶ bosd
//
// Authentication: AuthenticationService.Login with Config.Username / Config.Password returns a token and
// its lifetime; the driver sends it as the "authorization" metadata of every call, logs in again a little
// before it expires (on Config.Clock), and once more when the miner answers Unauthenticated to a token it
// had been reusing. A refused login is ErrBadPassword.
//
// Commands: REBOOT (ActionsService.Reboot), STOP_MINING / START_MINING (PauseMining / ResumeMining),
// SET_POWER_TARGET (PerformanceService.SetPowerTarget, saved and applied), CURTAIL (PauseMining; with
// PowerTargetW > 0 a lower power target), UNCURTAIL (ResumeMining, or the power target from before a
// partial curtailment, or the command's), BLINK (SetLocateDeviceStatus; param "enable"), UPDATE_POOLS
// (PoolService.SetPoolGroups: one group "hashfleet" of 1 to 3 pools in priority order), GET_POOLS (the
// cgminer API's pools) and GET_ERRORS (MinerService.GetErrors).
//
// State is the cgminer API's (MINING, STOPPED when paused, ...), CURTAILED instead when this driver
// curtailed the miner; PowerTargetW is the target this driver last set (the read API does not report it).
//
// Hostile replies: every gRPC call has a deadline (Config.RequestTimeout, or ctx's), replies are bounded
// (Config.MaxReplyBytes), and gRPC status codes are classified: Unavailable / DeadlineExceeded are
// miners.ErrUnreachable, a reply that is too large or not protobuf is miners.ErrMalformed, Unauthenticated
// / InvalidArgument and the like are miners.ErrRefused, Unimplemented is miners.ErrUnsupported.
package braiins
