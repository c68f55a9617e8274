package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/hashfleet/hashfleet/bootstrap"
	"github.com/hashfleet/hashfleet/node/localui"
)

func runNodeSetLocalAdmin(_ context.Context, args []string) error {
	fs := newFlags("node set-local-admin", "Set the local-admin credential of the node's local UI (HTTPS on --local-ui, default :8443): staff\non site log in with it when the cloud is unreachable. Stored as an argon2id hash in <data-dir>/localui/local-admin.json\n(0600), apart from every cloud credential. Replaces the previous one and ends its sessions.")
	dataDir := fs.String("data-dir", "", "the node's data directory (required)")
	user := fs.String("user", "admin", "the local-admin user name")
	passwordFile := fs.String("password-file", "", "read the password from the first line of this file (default: prompt)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dataDir == "" {
		return errors.New("--data-dir is required")
	}
	if err := localui.CheckUser(*user); err != nil {
		return err
	}
	var password string
	var err error
	if *passwordFile != "" {
		password, err = bootstrap.ReadPasswordFile(*passwordFile)
	} else {
		password, err = promptPassword(*user)
	}
	if err != nil {
		return err
	}
	path, err := bootstrap.SetLocalAdmin(*dataDir, *user, password)
	if err != nil {
		return err
	}
	fmt.Printf("local admin %q set in %s\n", *user, path)
	return nil
}

// promptPassword asks twice on the terminal (echo off where stty exists), or reads one line from a pipe.
func promptPassword(user string) (string, error) {
	fi, err := os.Stdin.Stat()
	tty := err == nil && fi.Mode()&os.ModeCharDevice != 0
	in := bufio.NewReader(os.Stdin)
	if !tty {
		line, err := in.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read the password from stdin: %w", err)
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	if err := stty("-echo"); err == nil {
		defer func() { _ = stty("echo") }()
	}
	ask := func(prompt string) (string, error) {
		fmt.Fprint(os.Stderr, prompt)
		line, err := in.ReadString('\n')
		fmt.Fprintln(os.Stderr)
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	p1, err := ask(fmt.Sprintf("password for local admin %q (at least %d characters): ", user, localui.MinPasswordLength))
	if err != nil {
		return "", err
	}
	if err := localui.CheckPassword(user, p1); err != nil {
		return "", err
	}
	p2, err := ask("again: ")
	if err != nil {
		return "", err
	}
	if p1 != p2 {
		return "", errors.New("the two passwords differ")
	}
	return p1, nil
}

func stty(arg string) error {
	cmd := exec.Command("stty", arg)
	cmd.Stdin = os.Stdin
	return cmd.Run()
}
