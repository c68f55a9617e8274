package cloudcluster

import (
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/signing"
)

// RotateForTest rotates s's shared keys as POST /cluster/v1/keys/rotate does, without the fan-out.
func (o *OrgSigner) RotateForTest(now time.Time, overlap time.Duration, expectActive string) (*signing.Rotation, int64, error) {
	return o.rotate(now, overlap, expectActive)
}

// RevokeForTest revokes keyID in s's shared keys, without the fan-out.
func (o *OrgSigner) RevokeForTest(now time.Time, keyID string) (*signing.Revocation, bool, int64, error) {
	return o.revoke(now, keyID)
}

// SignKeyCommandForTest signs cmd as a Node grain does (announcements with the key they retire).
func SignKeyCommandForTest(s *OrgSigner, cmd *pb.ControlCommand) error {
	sign, err := keyCommandSigner(s, cmd.GetPayload())
	if err != nil {
		return err
	}
	return sign(cmd)
}

// AnnouncementForTest is the stored announcement of keyID.
func (o *OrgSigner) AnnouncementForTest(keyID string) ([]byte, error) { return o.announcement(keyID) }
