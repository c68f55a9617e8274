package apiclient

import (
	"context"
	"errors"
	"net/http"
	"net/url"
)

// TransferStarted answers POST /api/v1/devices/{id}/transfer.
type TransferStarted struct {
	CommandID  string   `json:"command_id"`
	MinerID    string   `json:"miner_id"`
	From       string   `json:"from"`
	To         string   `json:"to"`
	Reseal     int      `json:"reseal"`
	Unsealable []string `json:"unsealable"`
}

// TransferDevice starts moving a device to node to; the returned command tracks it.
func (c *Client) TransferDevice(ctx context.Context, minerID, to string) (TransferStarted, error) {
	var out TransferStarted
	if minerID == "" || to == "" {
		return out, errors.New("transfer device: name the device and the node to move it to")
	}
	return out, c.Do(ctx, http.MethodPost, "/api/v1/devices/"+url.PathEscape(minerID)+"/transfer", map[string]string{"to": to}, &out)
}
