package main

import (
	"context"
	"os"

	"github.com/hashfleet/hashfleet/actors/progress"
	"github.com/hashfleet/hashfleet/bootstrap"
)

func runNodeBackup(ctx context.Context, args []string) error {
	fs := newFlags("node backup", "Write the node's keys, enrollment and seq high-water mark (with its keyring, batch seqs and ownership map)\n"+
		"to one archive (tar+gzip with a checksummed manifest, mode 0600). A running node is read through its loopback\n"+
		"admin endpoint (one consistent snapshot); a stopped one from its store. The archive holds private keys.")
	o := bootstrap.BackupOptions{Progress: os.Stderr, TTY: progress.IsTerminal(os.Stderr)}
	fs.StringVar(&o.DataDir, "data-dir", "", "the node's data directory (required)")
	fs.StringVar(&o.Out, "out", "", "the archive to write; not overwritten if it exists (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return bootstrap.NodeBackup(ctx, o, os.Stdout)
}

func runNodeRestore(ctx context.Context, args []string) error {
	fs := newFlags("node restore", "Restore a node backup into an empty data directory: checksums verified first, keys written 0600 under\n"+
		"0700, the seq high-water mark restored so the node refuses every command at or below it.")
	o := bootstrap.RestoreOptions{Progress: os.Stderr, TTY: progress.IsTerminal(os.Stderr)}
	fs.StringVar(&o.DataDir, "data-dir", "", "the data directory to restore into: missing or empty unless --force (required)")
	fs.StringVar(&o.In, "in", "", "the archive hashfleet node backup wrote (required)")
	fs.BoolVar(&o.Force, "force", false, "restore over a non-empty directory of the same node (stopped): the mark never moves backwards")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return bootstrap.NodeRestore(ctx, o, os.Stdout)
}
