package inspect

import "errors"

var (
	// ErrNotBadger: the directory is missing, empty, or holds no Badger store (no MANIFEST).
	ErrNotBadger = errors.New("not a Badger store")
	// ErrCorrupt: the directory looks like a Badger store but Badger cannot open it.
	ErrCorrupt = errors.New("Badger store cannot be read")
	// ErrLocked: a running process (the node or server) holds the store. Badger lets one process open a
	// directory; ask the running process instead (its loopback admin endpoint).
	ErrLocked = errors.New("store is in use by a running process")
	// ErrUnclean: the last process using the store did not close it (killed, crashed) and Badger must replay
	// its write-ahead log, which a read-only open cannot do.
	ErrUnclean = errors.New("store was not closed cleanly")
	// ErrForeign: a Badger store whose keys match no known schema.
	ErrForeign = errors.New("not a hashfleet store")
	// ErrEmpty: a Badger store with no keys at all, so its kind cannot be told.
	ErrEmpty = errors.New("store holds no keys")
	// ErrKeyNotFound: `get` of a key that is not there.
	ErrKeyNotFound = errors.New("key not found")
	// ErrNoAudit: the `audit` view on a store without an audit log.
	ErrNoAudit = errors.New("store keeps no audit log")
	// ErrAmbiguous: a store whose keys match two schemas equally well; name the kind (Config.Kind).
	ErrAmbiguous = errors.New("store kind is ambiguous")
)
