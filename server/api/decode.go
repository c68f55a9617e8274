package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// DecodeJSON reads a request body into v: a JSON Content-Type (or none), at most maxBytes, exactly one JSON
// value with no unknown fields and nothing after it. what names the value in errors ("command object"). An
// empty body is an error unless optional (v keeps its zero value). Every error wraps ErrBadRequest.
func DecodeJSON(w http.ResponseWriter, r *http.Request, maxBytes int64, v any, what string, optional bool) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return fmt.Errorf("%w: Content-Type must be application/json, got %q", ErrBadRequest, ct)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBytes))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, err = dec.Token(); errors.Is(err, io.EOF) {
			return nil
		} else if err == nil {
			err = errors.New("data after the " + what)
		}
	} else if errors.Is(err, io.EOF) {
		if optional {
			return nil
		}
		return fmt.Errorf("%w: empty body, want a JSON %s", ErrBadRequest, what)
	}
	if tooBig := (*http.MaxBytesError)(nil); errors.As(err, &tooBig) {
		return fmt.Errorf("%w: body exceeds %d bytes", ErrBadRequest, tooBig.Limit)
	}
	return fmt.Errorf("%w: malformed JSON: %v", ErrBadRequest, err)
}
