package bench

import "errors"

var (
	// ErrUnknownSuite is returned by Run for a suite name that is not in Suites.
	ErrUnknownSuite = errors.New("unknown benchmark suite")
	// ErrNoSuites is returned by Run when no suite is named.
	ErrNoSuites = errors.New("no benchmark suite named")
	// ErrSimulator is returned when a simulator process fails to start or dies during a run.
	ErrSimulator = errors.New("miner simulator failed")
	// ErrOptions wraps every problem Options.Validate finds.
	ErrOptions = errors.New("invalid benchmark options")
)

// ErrCloud is returned when the cloud server process fails to start or dies during a run.
var ErrCloud = errors.New("cloud server failed")
