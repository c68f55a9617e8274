package enroll

import "crypto"

// cryptoHashZero is the SignerOpts for ed25519 (no pre-hash).
var cryptoHashZero = crypto.Hash(0)
