package proto

import (
	"encoding/json"

	"github.com/hashfleet/hashfleet/miners/internal/httpx"
)

// accept is the Accept header of every request.
const accept = "application/json"

// statusErr turns a non-2xx answer into an error carrying the rig's message.
func statusErr(what string, rep *httpx.Reply) error {
	return httpx.StatusErr(what, rep, rigMessage(rep.Body))
}

// rigMessage extracts {"message":...} or {"error":{"message":...}} for error texts, bounded.
func rigMessage(body []byte) string {
	var m struct {
		Message string `json:"message"`
		Error   struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &m) == nil {
		switch {
		case m.Message != "":
			return httpx.QuoteShort(m.Message)
		case m.Error.Message != "":
			return httpx.QuoteShort(m.Error.Code + ": " + m.Error.Message)
		}
	}
	return httpx.QuoteShort(string(body))
}
