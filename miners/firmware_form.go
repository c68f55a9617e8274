package miners

import (
	"bytes"
	"fmt"
	"mime/multipart"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// FirmwareForm reads the image of a firmware update spec (FirmwareImage) and packs it as multipart/form-data
// for an upload: the image in the file field fileField, named as the spec's artifact is (defaultName when it
// has no name), then the plain fields given as name, value pairs in order. It returns the body and its
// Content-Type.
func FirmwareForm(spec *pb.CommandSpec, fileField, defaultName string, fields ...string) ([]byte, string, error) {
	if len(fields)%2 != 0 {
		return nil, "", fmt.Errorf("firmware update: form field %q has no value", fields[len(fields)-1])
	}
	img, err := FirmwareImage(spec)
	if err != nil {
		return nil, "", err
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	name := spec.GetFirmware().GetName()
	if name == "" {
		name = defaultName
	}
	fw, err := mw.CreateFormFile(fileField, name)
	if err != nil {
		return nil, "", fmt.Errorf("firmware update: %w", err)
	}
	_, _ = fw.Write(img)
	for i := 0; i < len(fields); i += 2 {
		_ = mw.WriteField(fields[i], fields[i+1])
	}
	if err := mw.Close(); err != nil {
		return nil, "", fmt.Errorf("firmware update: %w", err)
	}
	return body.Bytes(), mw.FormDataContentType(), nil
}
