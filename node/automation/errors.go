package automation

import "errors"

// Sentinel errors. Every error this package returns wraps one of them with context (the key id, the rule, the
// field at fault); policy key errors also wrap the messages/signing sentinel (signing.ErrRevokedKey, …).
var (
	// ErrUnsignedPolicy: a policy without a signature or key id. Policies are never accepted unsigned.
	ErrUnsignedPolicy = errors.New("policy is not signed")
	// ErrBadPolicySignature: the signature does not verify over the policy's bytes with the named key.
	ErrBadPolicySignature = errors.New("bad policy signature")
	// ErrPolicyKey: the signing key is not one this node trusts for policies now (unknown, revoked, of
	// another org, not yet valid or retired).
	ErrPolicyKey = errors.New("policy key not trusted")
	// ErrMalformedPolicy: the signed body is not a policy (bad JSON, unknown fields, trailing data).
	ErrMalformedPolicy = errors.New("malformed policy")
	// ErrInvalidPolicy: the policy decodes but a rule, schedule or pool pattern is unusable.
	ErrInvalidPolicy = errors.New("invalid policy")
	// ErrWrongSite: the policy is for another site.
	ErrWrongSite = errors.New("policy is for another site")
	// ErrStalePolicy: the policy's version is not newer than the installed one.
	ErrStalePolicy = errors.New("policy version is not newer than the installed one")
	// ErrBadPoolPattern: a trusted-pool pattern is unusable.
	ErrBadPoolPattern = errors.New("bad trusted pool pattern")
	// ErrInvalidConfig: a Config an operator must fix.
	ErrInvalidConfig = errors.New("invalid automation configuration")
)
