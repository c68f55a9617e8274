package schedule

import "errors"

var (
	// ErrBadConfig is wrapped by every Validate error.
	ErrBadConfig = errors.New("bad schedule config")
	// ErrUnknownScenario: Lookup was given a name no scenario has.
	ErrUnknownScenario = errors.New("unknown scenario")
)
