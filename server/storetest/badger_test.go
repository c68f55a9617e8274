package storetest_test

import (
	"testing"

	"github.com/hashfleet/hashfleet/server/lease"
	"github.com/hashfleet/hashfleet/server/store"
	"github.com/hashfleet/hashfleet/server/storetest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func openBadger(t *testing.T, dir string) storetest.Stores {
	t.Helper()
	st, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = st.Close()
		}
	})
	ls, err := lease.NewBadger(st.DB())
	if err != nil {
		t.Fatal(err)
	}
	return storetest.Stores{Store: st, Pairs: st, Sites: st, Lease: ls, Records: st, Reopen: func(t *testing.T) storetest.Stores {
		closed = true
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		return openBadger(t, dir)
	}}
}

// TestBadgerSuite: the embedded single-member store passes the shared suite.
func TestBadgerSuite(t *testing.T) {
	storetest.Run(t, storetest.Suite{Open: func(t *testing.T) storetest.Stores { return openBadger(t, t.TempDir()) }})
}
