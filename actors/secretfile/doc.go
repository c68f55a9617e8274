// Package secretfile keeps small secret files (private keys, certificates, credentials) in a private
// directory, for node/identity and server/tlsca alike:
//
//   - EnsureDir creates the directory 0700 if missing and, either way, refuses it (CheckDir) if group or
//     others can access it, naming its mode and the "chmod 700" that fixes it;
//   - WriteAtomic writes a file 0600 through a temp file in the same directory: write, fsync, close, rename
//     over the target, fsync the directory, so a crash leaves the old file or the new one, never a truncated
//     one; RemoveStaleTemps deletes the temp files such a crash left behind;
//   - CheckFile refuses a symbolic link, anything but a regular file, or a file group or others can access
//     (with the "chmod 600" that fixes it); Read checks the file, makes sure the file it opened is the one it
//     checked, and reads at most MaxSize bytes.
//
// Refusals wrap ErrInsecurePermissions, an oversized file ErrTooLarge; callers alias or wrap these in their
// own sentinels.
package secretfile
