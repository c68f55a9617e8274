package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/hashfleet/hashfleet/bootstrap"
	"github.com/hashfleet/hashfleet/node/localui"
	"github.com/hashfleet/hashfleet/node/uplink"
	"github.com/hashfleet/hashfleet/server/cloudcluster"
)

func runServer(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "cluster-kek" {
		return runServerClusterKEK(args[1:])
	}
	fs := newFlags("server", "The cloud server of split mode: operator API and UI, and the TLS gateway nodes dial.")
	var o bootstrap.ServerOptions
	fs.StringVar(&o.DataDir, "data-dir", "", "directory for the store, the command keys and the CA (required)")
	fs.StringVar(&o.Listen, "listen", bootstrap.DefaultListen, "address of the operator UI and API")
	fs.StringVar(&o.GatewayListen, "gateway-listen", bootstrap.DefaultGatewayListen, "address nodes connect to (gRPC over TLS)")
	fs.StringVar(&o.AdminToken, "admin-token", "", "API bearer token (default: $"+bootstrap.AdminTokenEnv+", else generated and printed)")
	hosts := fs.String("tls-hosts", "", "comma-separated names and IPs nodes dial the gateway by (default localhost,127.0.0.1,::1)")
	fs.BoolVar(&o.InsecureLoopback, "insecure-loopback", false, "serve the gateway (and a cluster member's gateway) without TLS (only on a loopback address)")
	fs.BoolVar(&o.GatewayMTLS, "gateway-mtls", false, "require mTLS: every node stream and session needs the client certificate issued at enrollment (enrollment itself does not)")
	fs.BoolVar(&o.DebugInject, "debug-inject", false, "enable POST /api/v1/nodes/{id}/inject (raw commands on a node's stream; demos and tests only)")
	fs.StringVar(&o.DebugIngestLog, "debug-ingest-log", "", "append every batch received and ack sent to this file as JSON lines (tests only)")
	fs.DurationVar(&o.SessionTTL, "session-ttl", 0, "lifetime of a node session token (default 1h)")
	clusterEtcd := fs.String("cluster-etcd", "", "join a multi-member cloud through etcd: etcd://host:port[,host:port] (needs --postgres; see docs/CLUSTER.md)")
	postgres := fs.String("postgres", "", "the members' shared store, postgres://user@host:port/db (with --cluster-etcd)")
	var co bootstrap.ClusterOptions
	fs.StringVar(&co.Listen, "cluster-listen", "", "this member's cluster remoting host:port (default 127.0.0.1:7600)")
	fs.StringVar(&co.HTTPListen, "cluster-http", "", "address of the /cluster/v1 endpoints (default 127.0.0.1:7601)")
	fs.StringVar(&co.GatewayListen, "cluster-gateway-listen", "", "address of the cluster gateway (TLS from the shared CA; loopback only with --insecure-loopback), or \"off\" (default 127.0.0.1:7602)")
	fs.StringVar(&co.KEKFile, "cluster-kek-file", "", "the key-encryption key `file` every member is given (0600; make one with: hashfleet server cluster-kek --out FILE): seals the shared CA, command keys and enrollment secret")
	metrics := bootstrap.MetricsFlags(fs, bootstrap.DefaultMetricsListen)
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *clusterEtcd != "":
		co.EtcdEndpoints, co.PostgresDSN = bootstrap.ParseEtcdEndpoints(*clusterEtcd), *postgres
		co.DataDir, co.InsecureLoopback, co.SessionTTL = o.DataDir, o.InsecureLoopback, o.SessionTTL
		if *hosts != "" {
			co.TLSHosts = strings.Split(*hosts, ",")
		}
		o.Cluster = &co
	case *postgres != "":
		return errors.New("--postgres is the shared store of a cluster: give --cluster-etcd too")
	}
	o.Metrics = metrics()
	if *hosts != "" {
		o.TLSHosts = strings.Split(*hosts, ",")
	}
	log, err := bootstrap.NewLogger(*logLevel)
	if err != nil {
		return err
	}
	o.Logger = log
	return bootstrap.RunServer(ctx, o, os.Stdout)
}

// runServerClusterKEK is `hashfleet server cluster-kek --out FILE`: a new key-encryption key for a cluster's
// members (docs/CLUSTER.md).
func runServerClusterKEK(args []string) error {
	fs := newFlags("server cluster-kek", "Make the key-encryption key a cluster's members share (0600 file; never overwrites). Give the same file\nto every member with --cluster-kek-file; keep a copy offline: without it the cluster's sealed secrets are lost.")
	out := fs.String("out", "", "file to create (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("--out is required")
	}
	k, err := cloudcluster.WriteKEK(*out)
	if err != nil {
		return err
	}
	fmt.Printf("wrote %s (KEK id %s)\n", *out, k.ID())
	return nil
}

var nodeCommands = map[string]command{
	"enroll":          {"make the node's keys and enroll with a one-time code; waits for the operator to confirm", runNodeEnroll},
	"run":             {"run an enrolled node", runNodeRun},
	"status":          {"show enrollment, key fingerprints, the seq high-water mark and the spool (read-only)", runNodeStatus},
	"backup":          {"write the node's keys, enrollment and seq high-water mark to one archive", runNodeBackup},
	"restore":         {"restore a backup into an empty data directory", runNodeRestore},
	"set-local-admin": {"set the local UI's local-admin credential (argon2id, 0600 file)", runNodeSetLocalAdmin},
	"rotate-signing-key": {"new miner-signing key: re-pair every Proto rig to it, then retire the old one (node stopped)",
		runNodeRotateSigningKey},
}

func runNode(ctx context.Context, args []string) error {
	if len(args) == 0 || nodeCommands[args[0]].run == nil {
		fmt.Fprintln(os.Stderr, "usage: hashfleet node enroll|run|status|backup|restore|set-local-admin|rotate-signing-key [flags]")
		for _, n := range []string{"enroll", "run", "status", "backup", "restore", "set-local-admin", "rotate-signing-key"} {
			fmt.Fprintf(os.Stderr, "  %-8s %s\n", n, nodeCommands[n].summary)
		}
		return flag.ErrHelp
	}
	return nodeCommands[args[0]].run(ctx, args[1:])
}

func runNodeEnroll(ctx context.Context, args []string) error {
	fs := newFlags("node enroll", "Make the node's keys, print its identity fingerprint, enroll with the one-time code and wait until the\noperator confirms the same fingerprint in the cloud; then save the api key.")
	var o bootstrap.EnrollOptions
	fs.StringVar(&o.Server, "server", "", "the server's gateway, HOST:PORT (required)")
	fs.StringVar(&o.Code, "code", "", "the one-time enrollment code (required)")
	fs.StringVar(&o.DataDir, "data-dir", "", "the node's data directory (required)")
	fs.StringVar(&o.CAFile, "ca-file", "", "the server's CA certificate (PEM) to pin; without it the CA is trusted on first use")
	fs.StringVar(&o.CAFingerprint, "ca-fingerprint", "", "the CA fingerprint the server printed (SHA256:...): enroll only if it matches")
	fs.BoolVar(&o.InsecureLoopback, "insecure-loopback", false, "enroll without TLS (only with a loopback server)")
	fs.StringVar(&o.Name, "name", "", "a name for the node, shown to the operator")
	fs.StringVar(&o.Site, "site", "", "the node's site")
	fs.DurationVar(&o.PollInterval, "poll", 0, "how often to ask whether the operator confirmed (default 2s)")
	logLevel := fs.String("log-level", "warn", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := bootstrap.NewLogger(*logLevel)
	if err != nil {
		return err
	}
	o.Logger = log
	_, err = bootstrap.Enroll(ctx, o, os.Stdout)
	return err
}

func runNodeRun(ctx context.Context, args []string) error {
	fs := newFlags("node run", "Run an enrolled node: dial the cloud over TLS (CA pinned at enrollment), open a session with the api key\nand the identity key, offer the --devices for pairing and run the miners the cloud confirms.")
	var o bootstrap.NodeRunOptions
	fs.StringVar(&o.DataDir, "data-dir", "", "the enrolled node's data directory (required)")
	devices := fs.String("devices", "", "JSON device list (as written by 'hashfleet minersim --devices-out')")
	fs.BoolVar(&o.InsecureLoopback, "insecure-loopback", false, "allow a plaintext gateway (enrolled with --insecure-loopback; loopback only)")
	fs.DurationVar(&o.PollInterval, "poll-interval", 0, "poll interval per miner (default 5s)")
	fs.IntVar(&o.ReplayRate, "replay-rate", 0, "most samples or events sent per second per stream, spool replay included (default 20000)")
	fs.StringVar(&o.LocalUI, "local-ui", localui.DefaultAddr, "address of the local HTTPS UI staff on site use while the cloud is down (\"off\" disables it; see set-local-admin)")
	fs.DurationVar(&o.LocalLogRetention, "local-log-retention", 0, "how long finished local commands stay in the node's local command log (default 720h; the newest action per miner and field is always kept; negative: forever)")
	fs.StringVar(&o.AdminListen, "admin-listen", bootstrap.DefaultNodeAdminListen, "loopback address of the read-only admin endpoint (named in status.json; \"off\" disables it)")
	fs.DurationVar(&o.StatusInterval, "status-interval", 0, "how often status.json is written (default 2s)")
	backoffMax := fs.Duration("backoff-max", 0, "longest wait between attempts to reach the cloud (default 30s)")
	fs.BoolVar(&o.ForwardMetrics, "forward-metrics", false, "forward this node's process metrics to the cloud over the events stream (shown in GET /api/v1/nodes)")
	fs.StringVar(&o.GossipListen, "gossip-listen", "0.0.0.0:7946", "host:port (UDP and TCP) of the warm-standby pair gossip, used once the cloud makes this node a pair member")
	fs.StringVar(&o.GossipAdvertise, "gossip-advertise", "", "host:port the pair partner reaches this node's gossip at (default: the listen address, or the first private IP)")
	metrics := bootstrap.MetricsFlags(fs, bootstrap.DefaultNodeMetricsListen)
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Metrics = metrics()
	log, err := bootstrap.NewLogger(*logLevel)
	if err != nil {
		return err
	}
	o.Logger = log
	if *backoffMax > 0 {
		o.Backoff = uplink.DefaultBackoff()
		o.Backoff.Max, o.Backoff.Initial = *backoffMax, min(o.Backoff.Initial, *backoffMax)
	}
	return bootstrap.RunNode(ctx, o, *devices, os.Stdout)
}

func runNodeStatus(_ context.Context, args []string) error {
	fs := newFlags("node status", "Show the node's enrollment, key fingerprints and seq high-water mark. Read-only: while the node runs\n(its store is locked) it shows the status file the node writes.")
	dataDir := fs.String("data-dir", "", "the node's data directory (required)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dataDir == "" {
		return errors.New("--data-dir is required")
	}
	return bootstrap.NodeStatus(*dataDir, os.Stdout, *asJSON)
}
