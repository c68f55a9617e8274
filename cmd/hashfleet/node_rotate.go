package main

import (
	"context"
	"errors"
	"os"

	"github.com/hashfleet/hashfleet/bootstrap"
	"github.com/hashfleet/hashfleet/miners/proto"
)

func runNodeRotateSigningKey(ctx context.Context, args []string) error {
	fs := newFlags("node rotate-signing-key", "Make a new miner-signing key, re-pair every Proto rig the node owns to it (authenticated by the\ncurrent key), then retire the current key. Run it with the node stopped; if a rig cannot be reached the\ncurrent key stays and a second run resumes.")
	dataDir := fs.String("data-dir", "", "the node's data directory (required)")
	scheme := fs.String("proto-scheme", "http", "http or https for the rigs' MDK API")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dataDir == "" {
		return errors.New("--data-dir is required")
	}
	return bootstrap.NodeRotateSigningKey(ctx, *dataDir, proto.Config{Scheme: *scheme}, os.Stdout)
}
