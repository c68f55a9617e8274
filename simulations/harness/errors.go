package harness

import "errors"

// ErrUnsupportedFault: the schedule holds a fault this harness's topology cannot inject (a pair role at a
// site of one node).
var ErrUnsupportedFault = errors.New("fault not supported by this topology")
