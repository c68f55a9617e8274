package server

// The server assembles its subpackages and reports their errors wrapped with context; the sentinels live
// where they are decided: grains (ErrInvalidCommand, ErrUnknownMiner, ...), gateway (ErrProtocol,
// ErrDraining, ...), api and store.
