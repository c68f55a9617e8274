package sealing_test

import (
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
	"testing"

	"github.com/hashfleet/hashfleet/messages/sealing"
)

// node is a fleet node's credential keypair, made the way node/identity makes it.
type node struct {
	id   string
	ecdh *ecdh.PrivateKey
	priv hpke.PrivateKey
}

func newNode(t testing.TB, id string) *node {
	t.Helper()
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return nodeFromKey(t, id, k)
}

func nodeFromKey(t testing.TB, id string, k *ecdh.PrivateKey) *node {
	t.Helper()
	priv, err := hpke.NewDHKEMPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return &node{id: id, ecdh: k, priv: priv}
}

func (n *node) pub() *ecdh.PublicKey { return n.ecdh.PublicKey() }

func (n *node) seal(t testing.TB, device, purpose string, pt []byte) *sealing.Envelope {
	t.Helper()
	env, err := sealing.Seal(n.pub(), n.id, device, purpose, pt)
	if err != nil {
		t.Fatalf("Seal(%s, %s, %s): %v", n.id, device, purpose, err)
	}
	return env
}

func (n *node) open(env *sealing.Envelope, device, purpose string) ([]byte, error) {
	return sealing.Open(n.priv, env, n.id, device, purpose)
}
