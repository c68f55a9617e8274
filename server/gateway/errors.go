package gateway

import "errors"

var (
	// ErrNoNodeMetadata: the stream carries no x-hashfleet-node metadata.
	ErrNoNodeMetadata = errors.New("missing x-hashfleet-node metadata")
	// ErrNotEnrolled: split mode refuses streams until enrollment and sessions exist.
	ErrNotEnrolled = errors.New("node sessions are not available on this server")
	// ErrDraining: the gateway is shutting down and accepts no new streams.
	ErrDraining = errors.New("gateway is draining")
	// ErrProtocol: a frame broke the gateway protocol (first frame not hello, empty frame, hello twice,
	// another node's id).
	ErrProtocol = errors.New("gateway protocol violation")
)
