// Package cgminer is the Driver for the CGMiner API: TCP 4028, one JSON request per connection, spoken by
// cgminer, bmminer (Antminer stock firmware), bosminer and LuxOS.
//
// A poll is one round trip with the joined command "summary+stats+pools"; firmware that refuses joined
// commands is remembered and polled with one request per command from then on.
//
//	Poll ─▶ roundTrip ─▶ bounded read (until NUL, EOF or MaxReplyBytes) ─▶ parse (tolerant, in place)
//	                                                                        │
//	      *pb.Telemetry ◀── normalize (alias table, units, per-board) ◀─────┘
//
// Real firmware is quirky and the parser tolerates what has been seen in the field: key case and spelling
// variants (folded and looked up in one alias table), trailing NUL bytes, numbers sent as strings, bare
// nan/inf, and bmminer's missing comma between stats objects ("}{"). Anything else it cannot read is an error
// wrapping miners.ErrMalformed that says where and what.
//
// State: CURTAILED when the work mode is sleep (stats "Mode":1) or a Sleeping flag is set, STOPPED when a
// Paused flag is set (firmware that pauses without saying so reads as ONLINE with no hashrate), MINING when
// the 5 s hashrate is positive, ONLINE otherwise.
//
// Parsing does not use reflection: replies are parsed in place into a flat node arena that is pooled across
// drivers, so a poll allocates little beyond the Telemetry it returns.
package cgminer
