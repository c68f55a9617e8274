package antminer

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/hashfleet/hashfleet/miners/internal/httpx"
)

// accept is the Accept header of every CGI request.
const accept = "application/json, text/plain, */*"

// statusErr turns a non-2xx answer into an error carrying the rig's message.
func statusErr(what string, rep *httpx.Reply) error {
	return httpx.StatusErr(what, rep, rigMessage(rep.Body))
}

// decodeJSON parses a CGI reply into v; stock firmware labels its JSON text/plain.
func decodeJSON(what string, rep *httpx.Reply, v any) error {
	return httpx.DecodeJSON(what, rep, v, "text/plain")
}

// rigMessage extracts the firmware's {"code","msg"} for error texts, bounded.
func rigMessage(body []byte) string {
	var m struct {
		Code string `json:"code"`
		Msg  string `json:"msg"`
	}
	if json.Unmarshal(body, &m) == nil && m.Msg != "" {
		return httpx.QuoteShort(strings.TrimSpace(m.Code + " " + m.Msg))
	}
	if len(bytes.TrimSpace(body)) > 0 && bytes.TrimSpace(body)[0] == '<' {
		return "(HTML page)"
	}
	return httpx.QuoteShort(string(body))
}
