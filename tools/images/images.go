// Package images builds the services' container images without Docker: an OCI image from
// scratch holding CA certificates, a passwd entry for the non-root user and one static binary.
package images

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// User is the uid and gid every image runs as: not root, and the same number the Kubernetes
// manifests require (runAsUser 65532, the "nonroot" user of distroless images).
const User = 65532

// BinDir is where the service binary lives in the image.
const BinDir = "/usr/local/bin"

// CACertsPath is where Go's crypto/x509 looks first on Linux.
const CACertsPath = "/etc/ssl/certs/ca-certificates.crt"

// Label keys of the OCI image spec's annotations, set as config labels.
const (
	LabelVersion  = "org.opencontainers.image.version"
	LabelRevision = "org.opencontainers.image.revision"
	LabelSource   = "org.opencontainers.image.source"
	LabelCreated  = "org.opencontainers.image.created"
	LabelTitle    = "org.opencontainers.image.title"
)

// Spec describes one image.
type Spec struct {
	// Name is the service, the binary's file name and the image title.
	Name string
	// Binary is the path of the static (CGO_ENABLED=0) linux binary on this machine.
	Binary string
	// CACerts is the PEM bundle copied to CACertsPath.
	CACerts []byte
	// Version, Revision and Source are the OCI labels; Created is both the label and the time of
	// every file in the layers, so that the same inputs give the same image digest.
	Version, Revision, Source string
	Created                   time.Time
	// Arch is the GOARCH the binary was built for.
	Arch string
}

// Build returns the image of s: a base layer (CA certificates, /etc/passwd, /etc/group, /tmp)
// and a layer with the binary, run as User with the binary as its entrypoint.
func Build(s Spec) (v1.Image, error) {
	if s.Name == "" || s.Binary == "" || len(s.CACerts) == 0 || s.Version == "" {
		return nil, fmt.Errorf("build image: name, binary, CA certificates and version are required")
	}
	bin, err := os.ReadFile(s.Binary)
	if err != nil {
		return nil, fmt.Errorf("build image %s: %w", s.Name, err)
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", User, User)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", User)
	base, err := layer(s.Created, []entry{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/passwd", mode: 0o644, body: []byte(passwd)},
		{name: "etc/group", mode: 0o644, body: []byte(group)},
		{name: "etc/ssl/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/", mode: 0o755, dir: true},
		{name: CACertsPath[1:], mode: 0o644, body: s.CACerts},
		{name: "home/", mode: 0o755, dir: true},
		{name: "home/nonroot/", mode: 0o700, dir: true, owner: User},
		{name: "tmp/", mode: 0o1777, dir: true},
	})
	if err != nil {
		return nil, err
	}
	app, err := layer(s.Created, []entry{
		{name: "usr/", mode: 0o755, dir: true},
		{name: "usr/local/", mode: 0o755, dir: true},
		{name: BinDir[1:] + "/", mode: 0o755, dir: true},
		{name: path.Join(BinDir[1:], s.Name), mode: 0o755, body: bin},
	})
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.AppendLayers(img, base, app)
	if err != nil {
		return nil, fmt.Errorf("build image %s: %w", s.Name, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("build image %s: %w", s.Name, err)
	}
	cf = cf.DeepCopy()
	arch := s.Arch
	if arch == "" {
		arch = "amd64"
	}
	cf.OS, cf.Architecture = "linux", arch
	cf.Created = v1.Time{Time: s.Created}
	cf.Config.Entrypoint = []string{path.Join(BinDir, s.Name)}
	cf.Config.Cmd = nil
	cf.Config.User = fmt.Sprintf("%d:%d", User, User)
	cf.Config.WorkingDir = "/"
	cf.Config.Env = []string{"PATH=" + BinDir, "SSL_CERT_FILE=" + CACertsPath}
	cf.Config.Labels = map[string]string{
		LabelTitle:    "webhooks-" + s.Name,
		LabelVersion:  s.Version,
		LabelRevision: s.Revision,
		LabelSource:   s.Source,
		LabelCreated:  s.Created.UTC().Format(time.RFC3339),
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("build image %s: %w", s.Name, err)
	}
	return img, nil
}

// Files lists the regular files of img's flattened filesystem with their mode and owner.
func Files(img v1.Image) (map[string]FileInfo, error) {
	rc := mutate.Extract(img)
	defer rc.Close()
	out := map[string]FileInfo{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read layers: %w", err)
		}
		out[path.Clean("/"+h.Name)] = FileInfo{Mode: h.FileInfo().Mode(), UID: h.Uid, Size: h.Size, Dir: h.Typeflag == tar.TypeDir}
	}
}

// FileInfo is what Files reports of one path.
type FileInfo struct {
	Mode os.FileMode
	UID  int
	Size int64
	Dir  bool
}

type entry struct {
	name  string
	mode  int64
	dir   bool
	owner int
	body  []byte
}

// layer returns an uncompressed-in-memory, gzip-on-write OCI layer of entries, every file owned
// by root (unless said otherwise) and dated mtime.
func layer(mtime time.Time, entries []entry) (v1.Layer, error) {
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: mtime, Uid: e.owner, Gid: e.owner, Format: tar.FormatPAX}
		if e.dir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("layer %s: %w", e.name, err)
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, fmt.Errorf("layer %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	return l, nil
}

// Services are the deployables of services/, one image each.
var Services = []string{"contacts", "messaging", "campaigns", "subscriptions", "dispatcher"}

// DefaultRegistry is the repository prefix of the images `make images` writes and the
// Kubernetes manifests name; a release re-tags them for its registry (see docs/operations.md).
const DefaultRegistry = "customertext"

// Repository is the image repository of a service under registry, without a tag.
func Repository(registry, service string) string {
	return registry + "/webhooks-" + service
}

// ReadFile returns the content of the regular file at p (absolute) in img's flattened
// filesystem.
func ReadFile(img v1.Image, p string) ([]byte, error) {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("read %s: %w", p, os.ErrNotExist)
		}
		if err != nil {
			return nil, fmt.Errorf("read layers: %w", err)
		}
		if path.Clean("/"+h.Name) == p && h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", p, err)
			}
			return b, nil
		}
	}
}
