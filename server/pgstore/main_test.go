package pgstore_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/hashfleet/hashfleet/actors/actortest"
	"github.com/hashfleet/hashfleet/server/testsvc"
	"go.uber.org/goleak"
)

// TestMain runs the tests on one shared PostgreSQL server (each test makes its own database), stops it,
// then checks that no goroutine outlived the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	testsvc.StopShared()
	if code == 0 {
		if err := goleak.Find(actortest.LeakOptions()...); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
