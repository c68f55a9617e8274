package apiclient

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"
)

// NodeRevocation answers POST /api/v1/nodes/{id}/revoke.
type NodeRevocation struct {
	NodeID             string   `json:"node_id"`
	StreamsCut         int      `json:"streams_cut"`
	Devices            []string `json:"devices"`
	CancelledTransfers []string `json:"cancelled_transfers"`
}

// CredentialStatus is one device's credential state (GET /api/v1/credentials, /devices/{id}/credentials).
type CredentialStatus struct {
	DeviceID    string   `json:"device_id"`
	State       string   `json:"state"`
	Owners      []string `json:"owners"`
	Credentials []struct {
		Purpose         string     `json:"purpose"`
		State           string     `json:"state"`
		Generation      uint64     `json:"generation"`
		Holders         []string   `json:"holders"`
		NeedsReentry    bool       `json:"needs_reentry"`
		PendingSince    *time.Time `json:"pending_since"`
		RevokedReaders  []string   `json:"revoked_readers"`
		NewSecretStaged bool       `json:"new_secret_staged"`
	} `json:"credentials"`
}

// RevokeNode revokes a node: its streams end now, its sessions are refused, and the credentials it could
// read become revocation-pending.
func (c *Client) RevokeNode(ctx context.Context, nodeID string) (NodeRevocation, error) {
	var out NodeRevocation
	if nodeID == "" {
		return out, errors.New("revoke node: empty node id")
	}
	return out, c.Do(ctx, http.MethodPost, "/api/v1/nodes/"+url.PathEscape(nodeID)+"/revoke", nil, &out)
}

// Credentials lists devices whose credentials need work, filtered by state ("" for all:
// "revocation-pending", "transfer-pending").
func (c *Client) Credentials(ctx context.Context, state string) ([]CredentialStatus, error) {
	var out struct {
		Devices []CredentialStatus `json:"devices"`
	}
	path := "/api/v1/credentials"
	if state != "" {
		path += "?state=" + url.QueryEscape(state)
	}
	return out.Devices, c.Do(ctx, http.MethodGet, path, nil, &out)
}
