package braiins

import "errors"

// ErrBadPassword: the miner refused the configured username and password.
var ErrBadPassword = errors.New("braiins OS refused the login")
