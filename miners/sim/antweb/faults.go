package antweb

import "github.com/hashfleet/hashfleet/miners/sim/internal/httpsim"

// Fault is a misbehaviour injected into one miner's web side (miners/sim has the API side's). Faults are
// about the reply; under FaultSlow and FaultWrongContentType the request is still carried out, under the
// others it is not. The HTTP simulators share the type.
type Fault = httpsim.Fault

// The faults:
//   - FaultNone: the web side behaves.
//   - FaultDown: the web listener and every connection are closed; connections are refused until cleared.
//   - FaultSlow: the status line and headers come at once, then the body one byte per Config.SlowByteDelay
//     (slow loris).
//   - FaultHang: the request is read and never answered, until the client gives up, the fault is cleared or
//     the fleet closes.
//   - FaultMalformedJSON: 200 with a truncated JSON body.
//   - FaultHugeBody: 200 with a JSON body of Config.HugeBodyBytes.
//   - FaultRedirect: 302 to Config.RedirectURL plus the request path, another host.
//   - FaultWrongContentType: the right JSON, labelled text/html.
const (
	FaultNone, FaultDown, FaultSlow, FaultHang                              = httpsim.FaultNone, httpsim.FaultDown, httpsim.FaultSlow, httpsim.FaultHang
	FaultMalformedJSON, FaultHugeBody, FaultRedirect, FaultWrongContentType = httpsim.FaultMalformedJSON, httpsim.FaultHugeBody, httpsim.FaultRedirect, httpsim.FaultWrongContentType
)
