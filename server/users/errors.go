package users

import "errors"

var (
	// ErrBadCredentials: unknown user or wrong password (never says which).
	ErrBadCredentials = errors.New("users: wrong user name or password")
	// ErrRateLimited: too many failed logins for this user or client; retry later.
	ErrRateLimited = errors.New("users: too many failed logins")
	// ErrNoSession: the session token is unknown or expired.
	ErrNoSession = errors.New("users: no such session")
	// ErrBadKey: the API key is malformed, unknown or revoked.
	ErrBadKey = errors.New("users: unknown or revoked API key")
	// ErrInvalid: a user name, password, role or key name an operator must fix.
	ErrInvalid = errors.New("users: invalid")
	// ErrExists: a user with that name exists.
	ErrExists = errors.New("users: already exists")
	// ErrNotFound: no such user or key.
	ErrNotFound = errors.New("users: not found")
	// ErrLastAdmin: the change would leave no admin user.
	ErrLastAdmin = errors.New("users: the last admin cannot be removed or demoted")
	// ErrStore: the store failed.
	ErrStore = errors.New("users: store")
)
