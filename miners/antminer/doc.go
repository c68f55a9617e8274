// Package antminer is the Driver for Antminers on stock firmware (bmminer): reads through the CGMiner API
// (miners/cgminer, TCP 4028, pb.Device.Address) and, on the web CGI (HTTP, pb.Device.WebAddress), system
// information and every write, behind HTTP digest authentication.
//
//	Poll ──▶ cgminer.Driver.Poll (summary+stats+pools) ──▶ *pb.Telemetry
//	     └─▶ web: get_miner_conf.cgi (work mode) + get_system_info.cgi (every Config.InfoTTL) ──▶ overlay
//	Execute ─▶ web: set_miner_conf.cgi (read-modify-write of the conf) / reboot.cgi / blink.cgi
//
// Digest authentication (RFC 7616, RFC 2617): MD5, SHA-256 and their -sess variants, qop=auth (and RFC 2069
// without qop), userhash; the strongest offered challenge is used. The challenge is kept and reused with an
// incrementing nonce count and a fresh cnonce per request, so a steady state costs one round trip; a 401
// with stale=true (or a 401 on a remembered nonce) is answered once with the new challenge, and a 401 on a
// fresh challenge means wrong credentials (ErrRefused). Authentication-Info nextnonce is honoured.
//
// Commands. Work mode ("bitmain-work-mode": "0" normal, "1" sleep, "3" low power; the newer numeric
// "miner-mode" is sent alongside) carries START_MINING and UNCURTAIL (normal), STOP_MINING and CURTAIL
// (sleep; CURTAIL with CommandSpec.PowerTargetW > 0 picks a mode from Config.PowerModes instead, a partial
// curtailment). SET_POWER_TARGET needs Config.PowerModes (ErrUnsupported without). UPDATE_POOLS writes
// pools 1..3 in priority order; REBOOT is reboot.cgi; BLINK is blink.cgi (params "enable"; the CGI has no
// duration); GET_POOLS asks the API; GET_ERRORS reports what a poll flags.
//
// State. Sleep reads as CURTAILED, or STOPPED when this driver's last power command was STOP_MINING; a
// low-power mode this driver set for a partial curtailment reads CURTAILED. Poll fails only when the API
// read fails; a web CGI failure during a poll leaves the API's sample with PollError "web cgi: ...".
//
// Hostile replies: bounded bodies (Config.MaxBodyBytes, ErrMalformed), per-request deadlines covering the
// body (ErrUnreachable), content types not trusted (stock firmware labels JSON text/plain), redirects only
// to the same scheme and host:port, and ErrSchemeMismatch for HTTP spoken to HTTPS or TLS to plain HTTP.
package antminer
