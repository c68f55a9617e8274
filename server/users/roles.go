package users

import "fmt"

// Role is what a user or API key may do. Roles are ordered: each includes the ones below it.
type Role uint8

const (
	// Viewer reads everything the API shows, and changes nothing.
	Viewer Role = iota + 1
	// Operator also commands miners (bulk actions, curtailment), runs discovery and pairs devices.
	Operator
	// Admin also manages users, API keys, node enrollment and the org's command keys.
	Admin
)

func (r Role) String() string {
	switch r {
	case Viewer:
		return "viewer"
	case Operator:
		return "operator"
	case Admin:
		return "admin"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// Valid reports whether r is one of the three roles.
func (r Role) Valid() bool { return r >= Viewer && r <= Admin }

// Allows reports whether r includes need.
func (r Role) Allows(need Role) bool { return r.Valid() && r >= need }

// ParseRole reads "admin", "operator" or "viewer".
func ParseRole(s string) (Role, error) {
	switch s {
	case "viewer":
		return Viewer, nil
	case "operator":
		return Operator, nil
	case "admin":
		return Admin, nil
	}
	return 0, fmt.Errorf("%w: role %q (want admin, operator or viewer)", ErrInvalid, s)
}

// Principal is who made a request.
type Principal struct {
	// Name is "user:<name>" or "key:<id>" (or "token:admin" for the server's admin token); it is the actor
	// recorded on commands.
	Name string
	Role Role
	// CSRF is the session's CSRF token ("" for API keys: they are not sent by browsers on their own).
	CSRF string
	// Session is true for a browser session (cookie): writes need the CSRF token.
	Session bool
}
