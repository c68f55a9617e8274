package automation

// InstallPolicy asks the AutomationActor to verify, persist and apply a signed policy (from a verified cloud
// command's payload, or the local UI). It is answered with *InstallReply.
type InstallPolicy struct {
	Signed *SignedPolicy
	// Source says where it came from, for logs ("cloud command 123", "local:admin").
	Source string
}

// InstallReply answers InstallPolicy. Err is nil, or wraps ErrUnsignedPolicy, ErrBadPolicySignature,
// ErrPolicyKey, ErrMalformedPolicy, ErrInvalidPolicy, ErrWrongSite or ErrStalePolicy (or is the store's
// error). Unchanged: the same version with the same bytes was already installed (a re-sent command).
type InstallReply struct {
	Version   uint64
	Unchanged bool
	Err       error
}

// StatusRequest asks the AutomationActor for its Status.
type StatusRequest struct{}

// Status is what the local UI shows of automation.
type Status struct {
	// PolicyVersion is 0 when no policy is installed.
	PolicyVersion uint64
	Site          string
	// PolicyError is why the stored policy could not be loaded at start, if it could not.
	PolicyError string
	// Held are miners an overheat rule curtailed or stopped, sorted.
	Held []string
	// Rebooting are reboots automation issued that have not come back yet, sorted.
	Rebooting []string
	Schedule  *ActiveSchedule
	Deferred  Deferred
	// TrustedPools are the installed patterns.
	TrustedPools []string
}

type tick struct{ gen uint64 }
