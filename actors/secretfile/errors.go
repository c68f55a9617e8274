package secretfile

import "errors"

var (
	// ErrInsecurePermissions: the directory or a file is accessible by group or others, is a symbolic link,
	// is not a regular file/directory, or was swapped between its check and its read.
	ErrInsecurePermissions = errors.New("insecure permissions")
	// ErrTooLarge: a secret file is larger than MaxSize, so it is not one this package wrote.
	ErrTooLarge = errors.New("secret file too large")
)
