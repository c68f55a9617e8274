package wmapi

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// V3Token is the salted token of an API v3 write: the first 8 characters of
// base64(SHA-256(cmd + password + salt + ts)).
func V3Token(cmd, password, salt string, ts int64) string {
	sum := sha256.Sum256([]byte(cmd + password + salt + strconv.FormatInt(ts, 10)))
	return base64.StdEncoding.EncodeToString(sum[:])[:8]
}

// ErrFrameTooLarge: a v3 frame announces more bytes than the reader accepts.
var ErrFrameTooLarge = errors.New("frame too large")

// WriteFrame writes one v3 message: a 4-byte little-endian length, then payload.
func WriteFrame(w io.Writer, payload []byte) error {
	buf := make([]byte, 4+len(payload))
	binary.LittleEndian.PutUint32(buf, uint32(len(payload)))
	copy(buf[4:], payload)
	_, err := w.Write(buf)
	return err
}

// ReadFrame reads one v3 message of at most max bytes. A larger announced length is ErrFrameTooLarge
// before any of the payload is read; a stream that ends early is io.ErrUnexpectedEOF (io.EOF before the
// first byte).
func ReadFrame(r io.Reader, max int) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if uint64(n) > uint64(max) {
		return nil, fmt.Errorf("%w: %d bytes announced, at most %d accepted", ErrFrameTooLarge, n, max)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("frame of %d bytes: %w", n, err)
	}
	return buf, nil
}

// V3 result codes.
const (
	V3OK               = 0
	V3Failed           = -1
	V3InvalidCommand   = -2
	V3InvalidJSON      = -3
	V3PermissionDenied = -4 // the token does not check (wrong password, salt or ts)
)
