package apiclient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func serve(t *testing.T, h http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL+"/", "tok", srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewRefusesBadInput(t *testing.T) {
	for _, base := range []string{"", "127.0.0.1:8080", "ftp://x", "http://", "://bad"} {
		if _, err := New(base, "tok", nil); err == nil {
			t.Errorf("New(%q) accepted", base)
		}
	}
	if _, err := New("http://127.0.0.1:1", "", nil); err == nil || !strings.Contains(err.Error(), "token") {
		t.Errorf("empty token: %v", err)
	}
}

func TestErrorsAreDecoded(t *testing.T) {
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			t.Errorf("authorization %q", r.Header.Get("Authorization"))
		}
		switch r.URL.Path {
		case "/api/v1/commands/c1":
			w.WriteHeader(404)
			_, _ = w.Write([]byte(`{"error":{"code":"not_found","message":"unknown command c1"}}`))
		case "/api/v1/miners":
			w.WriteHeader(502)
			_, _ = w.Write([]byte("<html>bad gateway</html>"))
		default:
			_, _ = w.Write([]byte(`{"command_id": 7`)) // truncated
		}
	})
	ctx := context.Background()
	_, err := c.Command(ctx, "c1")
	var e *Error
	if !errors.As(err, &e) || e.Status != 404 || e.Code != "not_found" || !IsNotFound(err) {
		t.Fatalf("404: %v", err)
	}
	if _, err := c.Miners(ctx, MinerQuery{}); !errors.As(err, &e) || e.Status != 502 || !strings.Contains(e.Message, "bad gateway") {
		t.Fatalf("502: %v", err)
	}
	if _, err := c.IssueCommand(ctx, CommandRequest{Action: "reboot", MinerIDs: []string{"m"}}); err == nil || !strings.Contains(err.Error(), "malformed answer") {
		t.Fatalf("truncated JSON: %v", err)
	}
}

func TestOversizedAnswerRefused(t *testing.T) {
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat(" ", 1<<20))
		for i := 0; i <= MaxResponseBytes>>20; i++ {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	if _, err := c.Miners(context.Background(), MinerQuery{}); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("oversized answer: %v", err)
	}
}

func TestAllMinerIDsPages(t *testing.T) {
	pages := 0
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		pages++
		switch r.URL.Query().Get("offset") {
		case "":
			_, _ = w.Write([]byte(`{"total":5,"items":[{"id":"a"},{"id":"b"}]}`))
		case "2":
			_, _ = w.Write([]byte(`{"total":5,"items":[{"id":"c"},{"id":"d"}]}`))
		case "4":
			_, _ = w.Write([]byte(`{"total":5,"items":[{"id":"e"}]}`))
		default:
			t.Errorf("unexpected offset %q", r.URL.Query().Get("offset"))
		}
	})
	ids, err := c.AllMinerIDs(context.Background(), MinerQuery{Limit: 2, State: "mining"})
	if err != nil || strings.Join(ids, "") != "abcde" || pages != 3 {
		t.Fatalf("ids %v pages %d err %v", ids, pages, err)
	}
}
