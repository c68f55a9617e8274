package api

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDecodeJSON(t *testing.T) {
	type body struct {
		Site string `json:"site"`
	}
	for _, c := range []struct {
		name, ct, body string
		optional       bool
		want           string // "" = accepted
	}{
		{"object", "application/json", `{"site":"east"}`, false, ""},
		{"no content type", "", `{"site":"east"}`, false, ""},
		{"empty, optional", "", ``, true, ""},
		{"empty", "", ``, false, "empty body, want a JSON thing"},
		{"wrong content type", "text/plain", `{"site":"east"}`, false, "Content-Type must be application/json"},
		{"unknown field", "", `{"site":"east","x":1}`, false, "unknown field"},
		{"trailing data", "", `{"site":"east"} {}`, false, "data after the thing"},
		{"truncated", "", `{"site":`, false, "malformed JSON"},
		{"too big", "", `{"site":"` + strings.Repeat("a", 200) + `"}`, false, "body exceeds 64 bytes"},
		{"too big after the object", "", `{"site":"e"}` + strings.Repeat(" ", 100), false, "body exceeds 64 bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(c.body))
			if c.ct != "" {
				r.Header.Set("Content-Type", c.ct)
			}
			var b body
			err := DecodeJSON(httptest.NewRecorder(), r, 64, &b, "thing", c.optional)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want != "" && (!errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("got %v, want ErrBadRequest with %q", err, c.want)
			}
		})
	}
}
