package artifacts_test

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/hashfleet/hashfleet/messages/pb"
	srvart "github.com/hashfleet/hashfleet/server/artifacts"
)

// BenchmarkDownload fetches a 64 MiB artifact over loopback gRPC (no TLS) in 32 KiB chunks and checks its
// sha256: the node's download path end to end, disk writes included.
func BenchmarkDownload(b *testing.B) {
	const size = 64 << 20
	c := startCloud(b, 2)
	data, sha := blob(b, size)
	if _, err := c.svc.Store().Put(bytes.NewReader(data), sha); err != nil {
		b.Fatal(err)
	}
	c.svc.Grant("node-a", "cmd-1", sha, srvart.ToNode)
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cl := newClient(b, c.addr, nil)
		path, err := cl.Download(context.Background(), "cmd-1", &pb.ArtifactRef{Sha256: sha, Size: size})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		_ = os.Remove(path)
		b.StartTimer()
	}
}
