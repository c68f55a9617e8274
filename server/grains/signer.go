package grains

import (
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/signing"
)

// OrgKeysSigner signs commands with the org's active issuance key (signing.OrgKeys) at the clock's now, and
// announces every key's public record (revoked ones included) in HelloAck.command_keys.
type OrgKeysSigner struct {
	Org   *signing.OrgKeys
	Clock clock.Clock
}

var _ Signer = OrgKeysSigner{}

// Sign implements Signer.
func (s OrgKeysSigner) Sign(cmd *pb.ControlCommand) error { return s.Org.Sign(cmd, s.Clock.Now()) }

// Keys implements Signer.
func (s OrgKeysSigner) Keys() []*pb.CommandKey { return s.Org.PublicKeys() }
