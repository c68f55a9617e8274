package harness

import (
	"testing"

	"github.com/hashfleet/hashfleet/actors/actortest"
)

// TestMain fails the package when a trial leaves goroutines behind.
func TestMain(m *testing.M) { actortest.VerifyTestMain(m) }
