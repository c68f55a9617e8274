// Package wmapi holds the wire-level pieces of the Whatsminer API that the driver (miners/whatsminer) and
// the simulator (miners/sim/whatsminer) share, each checked against independent known answers in its
// tests: MD5-crypt, the API v2 token and AES-256-ECB envelope, and the API v3 salted token and
// length-prefixed framing.
//
// API v2 (TCP 4028, one JSON request per connection). Writes need a token: get_token answers
// {"time","salt","newsalt"}; with the admin password
//
//	key    = the hash field of MD5-crypt(password, "$1$"+salt+"$")      ("$1$salt$HASH" → HASH)
//	aeskey = SHA-256(key)                                               (32 bytes: AES-256)
//	sign   = the hash field of MD5-crypt(key+time, "$1$"+newsalt+"$")   (the token)
//
// and a write is sent as {"enc":1,"data":base64(AES-256-ECB(aeskey, zero-padded JSON {"cmd",...,"token":sign}))};
// the miner answers {"enc":base64(...)} under the same key, or a plain {"STATUS":"E","Code":135,...} when the
// token does not check.
//
// API v3 (TCP 4433). Every message is a 4-byte little-endian length and that many bytes of JSON. Writes
// carry "ts" (Unix seconds), "account" and "token" = the first 8 characters of
// base64(SHA-256(cmd + password + salt + ts)), where salt comes from get.device.info.
package wmapi
