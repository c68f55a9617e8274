//go:build race

package spool

// raceEnabled shrinks the scale scenario under the race detector, which slows protobuf work tenfold.
const raceEnabled = true
