package discovery

import "errors"

// Sentinel errors. Target errors name the entry they are about; probe errors name the address and port.
var (
	// ErrNoTargets: a scan without any target.
	ErrNoTargets = errors.New("discovery: no targets given")
	// ErrBadTarget: a target entry that is not an IPv4 address, CIDR block or range, or a reversed range.
	ErrBadTarget = errors.New("malformed target")
	// ErrIPv6: an IPv6 target. Miners are found over IPv4 only.
	ErrIPv6 = errors.New("IPv6 targets are not supported (miners are discovered over IPv4)")
	// ErrRefusedAddress: a target holding addresses the scan policy refuses (public, link-local, multicast,
	// unspecified, reserved, broadcast).
	ErrRefusedAddress = errors.New("address refused by the scan policy")
	// ErrTooManyAddresses: a target or scan larger than Config.MaxAddresses, or too many target entries.
	ErrTooManyAddresses = errors.New("too many addresses for one scan")
	// ErrBadRequest: a scan request with invalid ports or protocols.
	ErrBadRequest = errors.New("discovery: invalid scan request")

	// ErrNotMiner: something answered on the port, but nothing a miner would say (another kind of device).
	ErrNotMiner = errors.New("answered, but not as a miner")
	// ErrHostile: the reply was malformed, oversized, too slow or redirected elsewhere.
	ErrHostile = errors.New("unreadable reply")
	// ErrDuplicateIdentity: two addresses reported the same MAC or serial; the lower address keeps it.
	ErrDuplicateIdentity = errors.New("identity already seen at another address")

	// ErrScanExists: StartScan with the id of a scan the actor already knows.
	ErrScanExists = errors.New("discovery: a scan with this id exists")
	// ErrBusy: StartScan while Config.MaxActiveScans scans are running.
	ErrBusy = errors.New("discovery: too many scans running")
	// ErrUnknownScan: a status or cancel request for a scan the actor does not know (or has forgotten).
	ErrUnknownScan = errors.New("discovery: unknown scan")
	// ErrScanPanic: the scan failed with an internal error; the node carries on.
	ErrScanPanic = errors.New("discovery: scan failed internally")
)
