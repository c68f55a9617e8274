package signing

import (
	"google.golang.org/protobuf/proto"

	"github.com/hashfleet/hashfleet/messages/pb"
)

func marshal(p *pb.CommandPayload) ([]byte, error) { return proto.Marshal(p) }

func snapshotsEqual(a, b []*pb.CommandKey) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
