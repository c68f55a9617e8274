// Package antweb simulates the web CGI of Antminers (stock bmminer firmware) over real sockets, with HTTP
// digest authentication really verified, in front of a miners/sim CGMiner fleet that answers the reads on
// the API port. Each miner has two listeners: the CGMiner API (a sim.Miner) and its web server.
//
//	Start(Config) ─▶ Fleet ─┬─ sim.Fleet (CGMiner API, 4028)      ◀── reads: summary, stats, pools
//	                        └─ Miner ── http.Server (web, 80) ── faults ▶ digest auth ▶ CGI
//	                                        │ set_miner_conf / reboot: the CGI drives bmminer through
//	                                        └─ its API, as real firmware does ──▶ sim.Miner (same state)
//
// CGI endpoints: GET /cgi-bin/get_system_info.cgi, GET /cgi-bin/get_miner_conf.cgi, POST
// /cgi-bin/set_miner_conf.cgi (JSON: "pools" 1..3 of {url,user,pass}, "bitmain-work-mode" "0" normal / "1"
// sleep / "3" low power, or the newer numeric "miner-mode"), GET or POST /cgi-bin/reboot.cgi, POST
// /cgi-bin/blink.cgi ({"blink":true|false}; GET reads it) and GET /cgi-bin/get_blink_status.cgi. Replies
// carry {"stats":"success"|"error","code","msg"} as the firmware's do.
//
// Write-through: the web side keeps what the API cannot hold (blink, the low-power work mode, pool
// passwords as configured, credentials) and changes everything else through the sim miner's CGMiner API on
// loopback (sleep/normal as "curtail sleep|wakeup", pools as addpool/switchpool/removepool/poolpriority,
// reboot as "restart"), so a poll on 4028 reads what the web side set. Those API writes also appear in the
// sim miner's own write log, coming from the simulator's address; the authoritative record of who wrote
// what through the web is this package's write log.
//
// Digest authentication (RFC 7616) with qop=auth: the algorithms offered are Config.DigestAlgorithms (MD5,
// as stock firmware, by default; SHA-256 and the -sess variants are available). Nonces live
// Config.NonceTTL on the injected clock; a correct response on an expired or unknown nonce gets 401 with
// stale=true, a wrong password 401 without it, and a replayed nonce count is refused.
//
// Reboot takes both listeners down for Config.RebootDuration on Config.Clock; sleep mode persists across it,
// as the miner's configuration does.
package antweb
