package antminer_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
)

func passwordSpec(pw string) *pb.CommandSpec {
	return &pb.CommandSpec{Action: pb.Action_ACTION_UPDATE_PASSWORD, Params: map[string]string{miners.ParamNewPassword: pw}}
}

// TestUpdatePasswordRotatesTheLogin: passwd.cgi changes the miner's password, and the driver logs in with
// the new one from then on.
func TestUpdatePasswordRotatesTheLogin(t *testing.T) {
	h := newHarness(t, nil)
	d, m := h.Driver(0, nil)
	if msg := exec(t, d, passwordSpec("n3w-s3cret")); msg != "password changed" {
		t.Fatalf("message %q", msg)
	}
	if m.Password() != "n3w-s3cret" {
		t.Fatalf("miner password %q", m.Password())
	}
	poll(t, d) // authenticates with the new password
	if got := exec(t, d, &pb.CommandSpec{Action: pb.Action_ACTION_FIRMWARE_STATUS}); !strings.HasPrefix(got, "firmware ") {
		t.Fatalf("after rotation: %q", got)
	}
	for _, w := range m.WriteLog() {
		for k, v := range w.Params {
			if strings.Contains(v, "n3w-s3cret") {
				t.Fatalf("write log shows the password in %s", k)
			}
		}
	}
}

// TestUpdatePasswordRefused: a miner that refuses keeps its password, the driver keeps logging in with the
// old one, and the error says why.
func TestUpdatePasswordRefused(t *testing.T) {
	h := newHarness(t, nil)
	d, m := h.Driver(0, nil)
	m.RefusePasswordChanges("password policy: at least 12 characters")
	_, err := d.Execute(ctx(t), passwordSpec("short"))
	if !errors.Is(err, miners.ErrRefused) || !strings.Contains(err.Error(), "at least 12 characters") {
		t.Fatalf("refused rotation: %v", err)
	}
	if m.Password() != "root" {
		t.Fatalf("miner password changed to %q", m.Password())
	}
	poll(t, d)
	if _, err := d.Execute(ctx(t), passwordSpec("")); err == nil {
		t.Fatal("empty password accepted")
	}
	if _, err := d.Execute(ctx(t), &pb.CommandSpec{Action: pb.Action_ACTION_UPDATE_PASSWORD}); err == nil {
		t.Fatal("no password accepted")
	}
}
