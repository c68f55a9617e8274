package faults

import (
	"errors"
	"fmt"
	"syscall"
)

var (
	// ErrNoUpstream: a Proxy was started without an Upstream address.
	ErrNoUpstream = errors.New("no upstream address")
	// ErrStarted: Start was called twice.
	ErrStarted = errors.New("already started")
	// ErrNotStarted: the injector was used before Start.
	ErrNotStarted = errors.New("not started")
	// ErrClosed: the injector was used after Close.
	ErrClosed = errors.New("closed")
	// ErrInjected is wrapped by every failure the gRPC shim and the gossip transport inject, so a test can
	// tell an injected failure from a real one.
	ErrInjected = errors.New("faults: injected")
	// ErrDiskFull is what a full disk looks like to the wrapped stores: it wraps syscall.ENOSPC, so code that
	// checks errors.Is(err, syscall.ENOSPC) sees a real full disk, and ErrInjected.
	ErrDiskFull = fmt.Errorf("disk full (%w): %w", ErrInjected, syscall.ENOSPC)
)
