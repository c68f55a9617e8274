package braiins

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/miners/braiins/bospb"
	"github.com/hashfleet/hashfleet/miners/cgminer"
)

// Driver speaks to one Braiins OS miner. Like every miners.Driver it is used from one goroutine at a time.
type Driver struct {
	id       string
	api      *cgminer.Driver
	grpcAddr string
	cfg      Config

	conn *grpc.ClientConn // made on first use, closed by Close

	token    string
	tokenExp time.Time

	curtail      curtailKind
	targetW      uint64 // the power target this driver last set; 0: unknown
	targetBefore uint64 // targetW when a partial curtailment began
}

type curtailKind uint8

const (
	curtailNone    curtailKind = iota
	curtailFull                // paused by CURTAIL
	curtailPartial             // power target lowered by CURTAIL
)

var _ miners.Driver = (*Driver)(nil)

// New returns a driver for dev: Address is the cgminer-compatible API (host:4028), WebAddress the gRPC API
// (when empty, Address's host on Config.GRPCPort).
func New(dev *pb.Device, cfg Config) (*Driver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	addr := dev.GetWebAddress()
	if addr == "" {
		host, _, err := net.SplitHostPort(dev.GetAddress())
		if err != nil || host == "" {
			return nil, fmt.Errorf("braiins: device %q has no usable address (%q)", dev.GetMinerId(), dev.GetAddress())
		}
		addr = net.JoinHostPort(host, strconv.Itoa(cfg.GRPCPort))
	}
	return &Driver{id: dev.GetMinerId(), api: cgminer.New(dev, cfg.CGMiner), grpcAddr: addr, cfg: cfg}, nil
}

// Close closes the gRPC connection. It is safe to call more than once.
func (d *Driver) Close() error {
	var err error
	if d.conn != nil {
		err = d.conn.Close()
		d.conn = nil
	}
	return errors.Join(err, d.api.Close())
}

// Poll reads one sample over the cgminer-compatible API.
func (d *Driver) Poll(ctx context.Context) (*pb.Telemetry, error) {
	t, err := d.api.Poll(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case d.curtail == curtailFull && t.GetState() == pb.MinerState_MINER_STATE_STOPPED,
		d.curtail == curtailPartial && t.GetState() != pb.MinerState_MINER_STATE_STOPPED:
		t.State = pb.MinerState_MINER_STATE_CURTAILED
	}
	if d.targetW > 0 {
		t.PowerTargetW = float64(d.targetW)
	}
	return t, nil
}

// client returns the gRPC connection, making it on first use (no I/O: it connects on the first call).
func (d *Driver) client() (*grpc.ClientConn, error) {
	if d.conn != nil {
		return d.conn, nil
	}
	creds := insecure.NewCredentials()
	if d.cfg.TLS != nil {
		creds = credentials.NewTLS(d.cfg.TLS)
	}
	conn, err := grpc.NewClient("passthrough:///"+d.grpcAddr,
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(d.cfg.MaxReplyBytes)))
	if err != nil {
		return nil, fmt.Errorf("grpc client for %s: %w", d.grpcAddr, err)
	}
	d.conn = conn
	return conn, nil
}

// login gets a fresh token.
func (d *Driver) login(ctx context.Context, conn *grpc.ClientConn) error {
	cctx, cancel := context.WithTimeout(ctx, d.cfg.RequestTimeout)
	defer cancel()
	rep, err := bospb.NewAuthenticationServiceClient(conn).Login(cctx, &bospb.LoginRequest{Username: d.cfg.Username, Password: d.cfg.Password})
	if err != nil {
		if c := status.Code(err); c == codes.Unauthenticated || c == codes.PermissionDenied {
			return fmt.Errorf("login as %q: %w: %w", d.cfg.Username, ErrBadPassword, d.grpcErr(ctx, err))
		}
		return fmt.Errorf("login: %w", d.grpcErr(ctx, err))
	}
	if rep.GetToken() == "" {
		return fmt.Errorf("login: reply has no token: %w", miners.ErrMalformed)
	}
	d.token = rep.GetToken()
	ttl := time.Duration(rep.GetTimeoutS()) * time.Second
	if ttl <= 0 {
		ttl = time.Hour
	}
	d.tokenExp = d.cfg.Clock.Now().Add(ttl)
	return nil
}

// call runs one authenticated gRPC call: it logs in when there is no live token, and logs in once more
// when the miner refuses a token that was being reused.
func (d *Driver) call(ctx context.Context, what string, fn func(ctx context.Context, conn *grpc.ClientConn) error) error {
	conn, err := d.client()
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		fresh := false
		if d.token == "" || !d.cfg.Clock.Now().Before(d.tokenExp.Add(-d.cfg.LoginMargin)) {
			if err := d.login(ctx, conn); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			fresh = true
		}
		cctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(ctx, "authorization", d.token), d.cfg.RequestTimeout)
		err := fn(cctx, conn)
		cancel()
		if err == nil {
			return nil
		}
		if status.Code(err) == codes.Unauthenticated && !fresh && attempt == 0 {
			d.token = ""
			continue
		}
		return fmt.Errorf("%s: %w", what, d.grpcErr(ctx, err))
	}
}

// grpcErr classifies a gRPC error with the miners sentinels, keeping the status text.
func (d *Driver) grpcErr(ctx context.Context, err error) error {
	st, _ := status.FromError(err)
	msg := st.Message()
	switch st.Code() {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("%s %s: %w: %w", d.grpcAddr, msg, cerr, miners.ErrUnreachable)
		}
		return fmt.Errorf("%s: %s: %w", d.grpcAddr, msg, miners.ErrUnreachable)
	case codes.ResourceExhausted:
		if strings.Contains(msg, "larger than max") {
			return fmt.Errorf("reply exceeds %d bytes (%s): %w", d.cfg.MaxReplyBytes, msg, miners.ErrMalformed)
		}
		return fmt.Errorf("%s: %w", msg, miners.ErrRefused)
	case codes.Internal:
		if strings.Contains(msg, "unmarshal") || strings.Contains(msg, "parse") {
			return fmt.Errorf("reply is not a valid protobuf message (%s): %w", msg, miners.ErrMalformed)
		}
		return fmt.Errorf("miner error: %s: %w", msg, miners.ErrRefused)
	case codes.Unimplemented:
		return fmt.Errorf("%s: %w", msg, miners.ErrUnsupported)
	}
	return fmt.Errorf("%s (%s): %w", msg, st.Code(), miners.ErrRefused)
}

// CheckLogin logs in with the configured credentials, to tell at pairing time whether they work. A refused
// login is ErrBadPassword.
func (d *Driver) CheckLogin(ctx context.Context) error {
	conn, err := d.client()
	if err != nil {
		return err
	}
	if err := d.login(ctx, conn); err != nil {
		return fmt.Errorf("check login %s: %w", d.id, err)
	}
	return nil
}
