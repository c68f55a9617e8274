package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/hashfleet/hashfleet/node/release"
)

// releaseOut is where `hashfleet release` reports (tests capture it).
var releaseOut io.Writer = os.Stdout

const releaseUsage = `usage: hashfleet release keygen --out DIR
       hashfleet release sign --key KEY --artifact FILE [--version V]
       hashfleet release verify --pub PUB --artifact FILE [--sig FILE.sig] [--version V]

Signed node releases (ed25519). keygen writes DIR/release.key (mode 0600) and DIR/release.pub; sign writes
FILE.sig, a signed manifest of the artifact (version, sha256, size, key id); verify checks an artifact against
a trusted public key and exits non-zero, saying why, when the archive is unsigned, signed by another key,
tampered with or not the expected version. The install script runs verify before installing anything.`

// runRelease is `hashfleet release`.
func runRelease(_ context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(os.Stderr, releaseUsage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "keygen":
		return releaseKeygen(args[1:])
	case "sign":
		return releaseSign(args[1:])
	case "verify":
		return releaseVerify(args[1:])
	}
	return fmt.Errorf("unknown release command %q: want keygen, sign or verify", args[0])
}

func releaseFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("hashfleet release "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), releaseUsage+"\n\nflags:")
		fs.PrintDefaults()
	}
	return fs
}

func releaseKeygen(args []string) error {
	fs := releaseFlags("keygen")
	out := fs.String("out", "", "directory for release.key and release.pub (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		return errors.New("keygen needs --out DIR and nothing else")
	}
	priv, pub, id, err := release.GenerateKey(*out)
	if err != nil {
		return err
	}
	fmt.Fprintf(releaseOut, "release key %s\n  private %s (mode 0600; keep it offline)\n  public  %s (ship it to nodes)\n", id, priv, pub)
	return nil
}

func releaseSign(args []string) error {
	fs := releaseFlags("sign")
	keyPath := fs.String("key", "", "the release private key (required; mode 0600)")
	art := fs.String("artifact", "", "the archive to sign (required); the signature goes to ARTIFACT.sig")
	version := fs.String("version", "", "the release version recorded in the manifest")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *keyPath == "" || *art == "" || fs.NArg() > 0 {
		return errors.New("sign needs --key KEY --artifact FILE [--version V]")
	}
	key, err := release.LoadPrivateKey(*keyPath)
	if err != nil {
		return err
	}
	m, err := release.Sign(key, *art, *version)
	if err != nil {
		return err
	}
	fmt.Fprintf(releaseOut, "signed %s: version %q, %d bytes, sha256 %s, key %s -> %s%s\n",
		*art, m.Version, m.Size, m.SHA256, m.KeyID, *art, release.SigSuffix)
	return nil
}

func releaseVerify(args []string) error {
	fs := releaseFlags("verify")
	pub := fs.String("pub", "", "the trusted release public key (required)")
	art := fs.String("artifact", "", "the archive to check (required)")
	sig := fs.String("sig", "", "its signature file (default ARTIFACT.sig)")
	version := fs.String("version", "", "refuse the archive unless it was signed as this version")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *pub == "" || *art == "" || fs.NArg() > 0 {
		return errors.New("verify needs --pub PUB --artifact FILE [--sig FILE.sig] [--version V]")
	}
	pk, err := release.LoadPublicKey(*pub)
	if err != nil {
		return err
	}
	v, err := release.NewVerifier(pk)
	if err != nil {
		return err
	}
	m, err := v.Verify(release.Check{Artifact: *art, Signature: *sig, Version: *version})
	if err != nil {
		return fmt.Errorf("REFUSED: %w", err)
	}
	fmt.Fprintf(releaseOut, "OK: %s is release %q signed by key %s (sha256 %s, %d bytes)\n", *art, m.Version, m.KeyID, m.SHA256, m.Size)
	return nil
}
