package node

import (
	"context"
	"crypto/hpke"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/sealing"
	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/miners/antminer"
	"github.com/hashfleet/hashfleet/miners/braiins"
	"github.com/hashfleet/hashfleet/miners/cgminer"
	"github.com/hashfleet/hashfleet/miners/proto"
	"github.com/hashfleet/hashfleet/miners/whatsminer"
	"github.com/hashfleet/hashfleet/node/credentials"
)

// Drivers builds each device's driver from its protocol, with one explicit configuration per driver family:
//
//	PROTOCOL_CGMINER   cgminer.New(CGMiner)
//	PROTOCOL_ANTMINER  antminer.New(Antminer + the device's login, else the stock root/root)
//	PROTOCOL_PROTO     proto.New(Proto: JWTs signed with the node's miner-signing key; + the device's password)
//	PROTOCOL_WHATSMINER whatsminer.New(Whatsminer + the device's admin password, else the factory "admin")
//	PROTOCOL_BRAIINS   braiins.New(Braiins: reads with CGMiner's settings; + the device's login, else root/"")
//
// A device's login arrives sealed to this node (Device.login_envelope, from the cloud's ownership map). It is
// opened just in time, when the driver is built, through a credentials.Opener that refuses devices the node
// does not own; the node stores only the envelope. The plaintext then lives in the driver's memory for the
// driver's life: the web CGI's digest authentication needs it on every request (a Proto rig's driver needs it
// only to fall back on the password when the rig refuses the node's JWT).
//
// Drivers is safe for concurrent use once built; set its fields before the node starts.
type Drivers struct {
	// CGMiner configures CGMiner-API miners and the API side of Antminers (Antminer.CGMiner is ignored).
	CGMiner cgminer.Config
	// Antminer configures the web CGI side. Username and Password are the login of devices that carry none
	// (zero: the stock root/root). PowerModes maps power targets to work modes (empty: set_power_target is
	// unsupported, as on stock firmware).
	Antminer antminer.Config
	// Proto configures Proto rigs. SigningKey is the node's miner-signing key (identity.MinerSigner) and
	// Issuer the node id; Password, when set, is the default login of devices that carry none.
	Proto proto.Config
	// Whatsminer configures Whatsminers (APIVersion 2 or 3; Password: the default admin password of devices
	// that carry none).
	Whatsminer whatsminer.Config
	// Braiins configures Braiins OS miners' gRPC side (Braiins.CGMiner is ignored: reads use CGMiner).
	Braiins braiins.Config
	// NodeID and CredentialKey (identity.HPKEPrivateKey) open sealed logins. Without a key a device that
	// carries a sealed login is refused with ErrNoCredentialKey.
	NodeID        string
	CredentialKey hpke.PrivateKey
	// Owns reports whether the node owns a device per its confirmed ownership map (Node.Owns). Nil: the
	// devices the site runs, which are the owned ones.
	Owns func(minerID string) bool
	// SourceIP, when set, is the local address every driver dials its miner from (a node host with several
	// addresses on the miners' LAN; the chaos simulations give each node its own 127.0.0.x so the simulated
	// miners' write logs tell the nodes apart). It replaces CGMiner.Dialer. Default: any.
	SourceIP string

	once       sync.Once
	sourceOnce sync.Once
	opener     *credentials.Opener
	err        error
}

// ErrNoCredentialKey: a device carries a sealed login but the node was given no credential key.
var ErrNoCredentialKey = errors.New("device has a sealed login but this node has no credential key")

// DefaultDriverFactory returns a factory for every protocol with the given CGMiner settings and the other
// drivers' defaults: no miner-signing key (Proto rigs then need a password) and no credential key.
func DefaultDriverFactory(cfg cgminer.Config) func(*pb.Device) (miners.Driver, error) {
	d := &Drivers{CGMiner: cfg}
	return d.New
}

// Factory returns d.New as a DriverFactory.
func (d *Drivers) Factory() func(*pb.Device) (miners.Driver, error) { return d.New }

func (d *Drivers) ownerOpener() (*credentials.Opener, error) {
	d.once.Do(func() {
		if d.CredentialKey == nil {
			return
		}
		owns := d.Owns
		if owns == nil {
			owns = func(string) bool { return true }
		}
		d.opener, d.err = credentials.New(credentials.Config{NodeID: d.NodeID, Key: d.CredentialKey, Owns: owns})
	})
	return d.opener, d.err
}

// New builds dev's driver. A sealed login is opened only for a device the node owns.
func (d *Drivers) New(dev *pb.Device) (miners.Driver, error) {
	op, err := d.ownerOpener()
	if err != nil {
		return nil, err
	}
	drv, err := d.build(dev, op)
	if err != nil {
		return nil, err
	}
	if pd, ok := drv.(*proto.Driver); ok && d.Proto.SigningKey != nil {
		return &pairingProto{Driver: pd}, nil
	}
	return drv, nil
}

// build makes the raw driver of dev, opening its sealed login with op.
func (d *Drivers) build(dev *pb.Device, op *credentials.Opener) (miners.Driver, error) {
	d.sourceOnce.Do(d.applySourceIP)
	switch dev.GetProtocol() {
	case pb.Protocol_PROTOCOL_CGMINER:
		return cgminer.New(dev, d.CGMiner), nil
	case pb.Protocol_PROTOCOL_ANTMINER:
		cfg := d.Antminer
		cfg.CGMiner = d.CGMiner
		if cfg.CGMiner.Clock == nil {
			cfg.CGMiner.Clock = cfg.Clock
		}
		if u := dev.GetLoginUser(); u != "" {
			cfg.Username = u
		}
		if err := openLogin(op, dev, func(pw string) { cfg.Password = pw }); err != nil {
			return nil, err
		}
		return antminer.New(dev, cfg)
	case pb.Protocol_PROTOCOL_PROTO:
		cfg := d.Proto
		if cfg.Issuer == "" {
			cfg.Issuer = d.NodeID
		}
		if err := openLogin(op, dev, func(pw string) { cfg.Password = pw }); err != nil {
			return nil, err
		}
		return proto.New(dev, cfg)
	case pb.Protocol_PROTOCOL_WHATSMINER:
		cfg := d.Whatsminer
		if err := openLogin(op, dev, func(pw string) { cfg.Password = pw }); err != nil {
			return nil, err
		}
		return whatsminer.New(dev, cfg)
	case pb.Protocol_PROTOCOL_BRAIINS:
		cfg := d.Braiins
		cfg.CGMiner = d.CGMiner
		if u := dev.GetLoginUser(); u != "" {
			cfg.Username = u
		}
		if err := openLogin(op, dev, func(pw string) { cfg.Password = pw }); err != nil {
			return nil, err
		}
		return braiins.New(dev, cfg)
	}
	return nil, fmt.Errorf("protocol %s: %w", dev.GetProtocol(), miners.ErrUnsupported)
}

// openLogin opens dev's sealed login, if it has one, and hands the password to set.
func openLogin(op *credentials.Opener, dev *pb.Device, set func(string)) error {
	raw := dev.GetLoginEnvelope()
	if len(raw) == 0 {
		return nil
	}
	if op == nil {
		return fmt.Errorf("login of %s: %w", dev.GetMinerId(), ErrNoCredentialKey)
	}
	env, err := sealing.Parse(raw)
	if err != nil {
		return fmt.Errorf("login of %s: %w", dev.GetMinerId(), err)
	}
	return op.Use(env, dev.GetMinerId(), sealing.PurposeMinerLogin, func(secret []byte) error {
		set(string(secret))
		return nil
	})
}

// pairingProto pairs an owned Proto rig on first contact when the rig refuses the node's JWT: a rig the
// operator confirmed as this node's (paired through the cloud, or listed in combined mode's device file)
// that has no key yet, or was reset. Pair succeeds without a password only on a rig that has no key; a rig
// paired to another key needs its password, sealed to this node.
type pairingProto struct {
	*proto.Driver
	tried bool
}

func (p *pairingProto) Poll(ctx context.Context) (*pb.Telemetry, error) {
	t, err := p.Driver.Poll(ctx)
	if err == nil || p.tried || !errors.Is(err, proto.ErrNotPaired) {
		return t, err
	}
	p.tried = true
	if _, perr := p.Driver.Pair(ctx); perr != nil {
		return nil, fmt.Errorf("%w (pairing on first contact failed too: %v)", err, perr)
	}
	return p.Driver.Poll(ctx)
}

// Pairer pairs one device for a cloud pairing command (*Drivers implements it).
type Pairer interface {
	Pair(ctx context.Context, dev *pb.Device) PairOutcome
}

var _ Pairer = (*Drivers)(nil)

// PairOutcome is what pairing one device came to: SUCCEEDED (paired), NEEDS_CREDENTIALS, WRONG_CREDENTIALS,
// or FAILED (unreachable, not the miner expected, ...), with a message for the operator.
type PairOutcome struct {
	Code    pb.ResultCode
	Message string
}

// Pair tries to bring dev into service on this node with the login it carries (sealed to this node) or the
// defaults: it reaches the miner, checks the login where the protocol has one (Antminer web CGI), and pairs a
// Proto rig with the node's miner-signing key so that afterwards it authenticates with the node's JWTs. It
// claims nothing: the cloud records ownership when it hears SUCCEEDED. The signed pairing command that asks
// for it is what allows opening dev's sealed login before dev is owned.
func (d *Drivers) Pair(ctx context.Context, dev *pb.Device) PairOutcome {
	id := dev.GetMinerId()
	var op *credentials.Opener
	if len(dev.GetLoginEnvelope()) > 0 {
		if d.CredentialKey == nil {
			return failed("cannot open the login sealed for %s: %v", id, ErrNoCredentialKey)
		}
		var err error
		op, err = credentials.New(credentials.Config{NodeID: d.NodeID, Key: d.CredentialKey,
			Owns: func(m string) bool { return m == id }})
		if err != nil {
			return failed("credential opener: %v", err)
		}
	}
	given := op != nil
	drv, err := d.build(dev, op)
	if err != nil {
		return failed("%v", err)
	}
	defer drv.Close()
	switch drv := drv.(type) {
	case *antminer.Driver:
		info, err := drv.SystemInfo(ctx)
		switch {
		case errors.Is(err, antminer.ErrBadCredentials) && given:
			return PairOutcome{pb.ResultCode_RESULT_CODE_WRONG_CREDENTIALS, "the web interface refused the credentials given: " + err.Error()}
		case errors.Is(err, antminer.ErrBadCredentials):
			return PairOutcome{pb.ResultCode_RESULT_CODE_NEEDS_CREDENTIALS,
				"the web interface refused the stock login (root/root): give the miner's web credentials"}
		case err != nil:
			return failed("%v", err)
		}
		t, err := drv.Poll(ctx)
		if err != nil {
			return failed("web login works, but the CGMiner API does not answer: %v", err)
		}
		return PairOutcome{pb.ResultCode_RESULT_CODE_SUCCEEDED, describe("paired", t, info.Serial, info.MAC)}
	case *proto.Driver:
		if d.Proto.SigningKey == nil {
			return failed("this node has no miner-signing key to pair a Proto rig with")
		}
		info, err := drv.Pair(ctx)
		switch {
		case errors.Is(err, proto.ErrBadPassword):
			return PairOutcome{pb.ResultCode_RESULT_CODE_WRONG_CREDENTIALS, "the rig refused the password given: " + err.Error()}
		case errors.Is(err, proto.ErrNotPaired), errors.Is(err, proto.ErrNoCredentials):
			return PairOutcome{pb.ResultCode_RESULT_CODE_NEEDS_CREDENTIALS,
				"the rig is paired to another key: give its password to pair it with this node"}
		case err != nil:
			return failed("%v", err)
		}
		t, err := drv.Poll(ctx)
		if err != nil {
			return failed("paired, but the first poll with the node's key failed: %v", err)
		}
		return PairOutcome{pb.ResultCode_RESULT_CODE_SUCCEEDED, describe("paired with this node's key", t, info.Serial, info.MAC)}
	case *braiins.Driver:
		err := drv.CheckLogin(ctx)
		switch {
		case errors.Is(err, braiins.ErrBadPassword) && given:
			return PairOutcome{pb.ResultCode_RESULT_CODE_WRONG_CREDENTIALS, "the miner refused the login given: " + err.Error()}
		case errors.Is(err, braiins.ErrBadPassword):
			return PairOutcome{pb.ResultCode_RESULT_CODE_NEEDS_CREDENTIALS, "the miner refused the stock login (root, no password): give its credentials"}
		case err != nil:
			return failed("%v", err)
		}
		t, err := drv.Poll(ctx)
		if err != nil {
			return failed("login works, but the cgminer API does not answer: %v", err)
		}
		return PairOutcome{pb.ResultCode_RESULT_CODE_SUCCEEDED, describe("paired", t, "", "")}
	default:
		t, err := drv.Poll(ctx)
		if err != nil {
			return failed("%v", err)
		}
		return PairOutcome{pb.ResultCode_RESULT_CODE_SUCCEEDED, describe("paired", t, "", "")}
	}
}

func failed(format string, args ...any) PairOutcome {
	return PairOutcome{pb.ResultCode_RESULT_CODE_FAILED, fmt.Sprintf(format, args...)}
}

func describe(what string, t *pb.Telemetry, serial, mac string) string {
	parts := []string{what}
	if m := t.GetModel(); m != "" {
		parts = append(parts, m)
	}
	if serial == "" {
		serial = t.GetSerial()
	}
	if serial != "" {
		parts = append(parts, "serial "+serial)
	}
	if mac == "" {
		mac = t.GetMac()
	}
	if mac != "" {
		parts = append(parts, "MAC "+mac)
	}
	return strings.Join(parts, ", ")
}

// applySourceIP points every driver family's dialer at SourceIP.
func (d *Drivers) applySourceIP() {
	ip := net.ParseIP(d.SourceIP)
	if ip == nil {
		return
	}
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}
	d.CGMiner.Dialer = dialer.DialContext
	d.Whatsminer.Dialer = dialer.DialContext
	d.Antminer.SourceIP, d.Proto.SourceIP = d.SourceIP, d.SourceIP
}
