package server

import (
	"fmt"
	"path/filepath"

	"github.com/hashfleet/hashfleet/server/history"
	"github.com/hashfleet/hashfleet/server/store"
	"github.com/hashfleet/hashfleet/server/users"
)

// AdminUser is the user made on first start, with the admin token as its password.
const AdminUser = "admin"

// openHistory opens the telemetry history in <DataDir>/history (its own Badger: history writes are many
// and need no fsync each, unlike the server's store), or in memory without a DataDir.
func openHistory(cfg Config) (*history.History, error) {
	hc := cfg.History
	hc.Dir = ""
	if cfg.DataDir != "" {
		hc.Dir = filepath.Join(cfg.DataDir, history.DirName)
	}
	if hc.Clock == nil {
		hc.Clock = cfg.Clock
	}
	if hc.Logger == nil {
		hc.Logger = cfg.Logger
	}
	if hc.Registerer == nil {
		hc.Registerer = cfg.Registerer
	}
	h, err := history.Open(hc)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	return h, nil
}

// openUsers loads users and API keys from the store. While no admin user exists, user "admin" signs in
// with the admin token, which creates it.
func openUsers(cfg Config, st *store.Badger) (*users.Service, error) {
	uc := cfg.Users
	if uc.Clock == nil {
		uc.Clock = cfg.Clock
	}
	if uc.Logger == nil {
		uc.Logger = cfg.Logger
	}
	svc, err := users.Open(st.DB(), uc)
	if err != nil {
		return nil, err
	}
	if err := svc.SetBootstrapAdmin(AdminUser, cfg.AdminToken); err != nil {
		return nil, fmt.Errorf("first admin: %w", err)
	}
	return svc, nil
}

// Users are the operators, API keys and sessions of the UI and API.
func (s *Server) Users() *users.Service { return s.users }

// History is the telemetry history.
func (s *Server) History() *history.History { return s.history }
