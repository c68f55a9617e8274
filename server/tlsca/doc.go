// Package tlsca is the cloud server's own certificate authority, so a self-hosted server needs no public CA
// and a node trusts exactly one CA: the one it pinned at enrollment.
//
// At first start LoadOrCreate makes an ECDSA P-256 CA and a server certificate for the configured hostnames
// and IPs (default localhost, 127.0.0.1, ::1), and persists them; later starts reload them, so the CA (and
// what every node pinned) never changes. The server certificate is reissued by the same CA when the host list
// changes or it nears expiry (at load, or on RenewIfDue).
//
//	<dir>/          0700
//	  ca.key        0600  CA private key (PKCS #8 PEM)      signs server and node client certificates only
//	  ca.crt        0600  CA certificate (PEM)              what CAPEM returns; nodes pin it
//	  server.key    0600  server private key (PKCS #8 PEM)
//	  server.crt    0600  server certificate (PEM)          ServerAuth, the configured hosts
//
//	server: ServerTLSConfig()  ── TLS 1.3 ──▶  node: ClientTLSConfig(CAPEM)  (RootCAs = only this CA)
//	        [RequireClientCert()]  ◀── client cert from IssueClientCert(node_id) (optional mTLS)
//
// Files are written temp + fsync + rename + fsync(dir) through actors/secretfile; Load refuses files or a
// directory accessible by group or others, naming the file, its mode and the chmod that fixes it.
package tlsca
