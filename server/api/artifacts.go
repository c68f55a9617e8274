package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/artifacts"
)

// Artifacts is the cloud's artifact store as the API needs it. *artifacts.Store implements it.
type Artifacts interface {
	Put(r io.Reader, want string) (artifacts.Meta, error)
	Open(sha string) (*os.File, artifacts.Meta, error)
	MaxSize() int64
}

// ArtifactSHAHeader optionally names the sha256 an upload must hash to.
const ArtifactSHAHeader = "X-Artifact-Sha256"

func (a *API) registerArtifacts() {
	a.handle("POST", "/api/v1/artifacts", a.postArtifact)
	a.handle("GET", "/api/v1/artifacts/{sha}", a.getArtifact)
}

// postArtifact stores the request body (raw bytes, at most the store's size limit) content-addressed.
func (a *API) postArtifact(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Artifacts == nil {
		a.unavailable(w, "artifacts")
		return
	}
	limit := a.cfg.Artifacts.MaxSize()
	if r.ContentLength > limit {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("artifact of %d bytes: the limit is %d", r.ContentLength, limit))
		return
	}
	m, err := a.cfg.Artifacts.Put(http.MaxBytesReader(w, r.Body, limit+1), r.Header.Get(ArtifactSHAHeader))
	var tooBig *http.MaxBytesError
	switch {
	case errors.Is(err, artifacts.ErrTooLarge) || errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("artifact larger than the limit of %d bytes", limit))
	case errors.Is(err, artifacts.ErrChecksum):
		writeError(w, http.StatusUnprocessableEntity, "checksum_mismatch", err.Error())
	case errors.Is(err, artifacts.ErrBadSHA):
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
	case err != nil:
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
	default:
		writeJSON(w, http.StatusCreated, m)
	}
}

func (a *API) getArtifact(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Artifacts == nil {
		a.unavailable(w, "artifacts")
		return
	}
	f, m, err := a.cfg.Artifacts.Open(r.PathValue("sha"))
	switch {
	case errors.Is(err, artifacts.ErrBadSHA):
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	case errors.Is(err, artifacts.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	defer func() { _ = f.Close() }()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(m.Size, 10))
	w.Header().Set("ETag", `"`+m.SHA256+`"`)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = io.Copy(w, f)
}

// firmwareRequestJSON names an uploaded artifact in a command.
type firmwareRequestJSON struct {
	SHA256 string `json:"sha256"`
	Name   string `json:"name,omitempty"`
}

// firmwareRef resolves a command's firmware to the stored artifact (its size comes from the store).
func (a *API) firmwareRef(in *firmwareRequestJSON) (*pb.ArtifactRef, error) {
	if in == nil {
		return nil, nil
	}
	if a.cfg.Artifacts == nil {
		return nil, fmt.Errorf("%w: this server keeps no artifacts", ErrBadRequest)
	}
	f, m, err := a.cfg.Artifacts.Open(in.SHA256)
	if err != nil {
		return nil, fmt.Errorf("%w: firmware: %v", ErrBadRequest, err)
	}
	_ = f.Close()
	return &pb.ArtifactRef{Sha256: m.SHA256, Size: m.Size, Name: in.Name}, nil
}
