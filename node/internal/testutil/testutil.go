// Package testutil gives node tests the shared actor test helpers (actors/actortest) under the names the
// node's tests use.
package testutil

import (
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/actortest"
	"go.uber.org/goleak"
)

// LeakOptions: see actortest.LeakOptions.
func LeakOptions() []goleak.Option { return actortest.LeakOptions() }

// VerifyTestMain: see actortest.VerifyTestMain.
func VerifyTestMain(m *testing.M) { actortest.VerifyTestMain(m) }

// VerifyNone: see actortest.VerifyNone.
func VerifyNone(t *testing.T) { t.Helper(); actortest.VerifyNone(t) }

// WaitFor: see actortest.WaitFor.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	actortest.WaitFor(t, timeout, what, cond)
}

// Eventually: see actortest.Eventually.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	actortest.Eventually(t, what, cond)
}
