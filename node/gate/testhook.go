package gate

import "sync/atomic"

// unsafeSkipSeqCheck: see UnsafeTestSkipSeqCheck.
var unsafeSkipSeqCheck atomic.Bool

// UnsafeTestSkipSeqCheck turns off, for every gate in the process, the refusal of commands whose seq is at or
// below the persisted high-water mark: a replayed or out-of-order command that is otherwise authentic then
// runs. TEST-ONLY: it exists so the chaos simulations can prove their no-forbidden-execution oracle catches
// a gate without its seq check (a deliberately broken build). Never call it outside a test; the previous
// setting is returned so a test can restore it.
func UnsafeTestSkipSeqCheck(on bool) (was bool) { return unsafeSkipSeqCheck.Swap(on) }
