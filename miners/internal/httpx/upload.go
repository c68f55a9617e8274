package httpx

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// Upload sends one request with body as contentType (a multipart form, a firmware image) and reads the
// reply within Config.RequestTimeout (or ctx's earlier deadline). Redirects are not followed: an upload is
// never replayed to another URL.
func (c *Client) Upload(ctx context.Context, method string, u *url.URL, body []byte, contentType string, authz func(method, uri string) string) (*Reply, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, u.Path, err)
	}
	req.Header.Set("Accept", c.accept)
	req.Header.Set("Content-Type", contentType)
	if a := authz(method, u.RequestURI()); a != "" {
		req.Header.Set("Authorization", a)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, c.transportErr(ctx, method, u, err)
	}
	return c.read(ctx, method, u, resp)
}
