package images_test

import (
	"bytes"
	"debug/elf"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/customertext/webhooks/tools/images"
)

const testCerts = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

// check asserts what every service image must be: OCI media types, the binary as entrypoint, the
// non-root user with a passwd entry, CA certificates, a writable /tmp and the OCI labels.
func check(t *testing.T, img v1.Image, service, version string) []byte {
	t.Helper()
	mt, err := img.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	if mt != types.OCIManifestSchema1 {
		t.Errorf("%s: manifest media type %s, want %s", service, mt, types.OCIManifestSchema1)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	bin := images.BinDir + "/" + service
	if diff := cmp.Diff([]string{bin}, cf.Config.Entrypoint); diff != "" {
		t.Errorf("%s: entrypoint (-want +got):\n%s", service, diff)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("%s: user %q, want 65532:65532", service, cf.Config.User)
	}
	if cf.OS != "linux" {
		t.Errorf("%s: os %q, want linux", service, cf.OS)
	}
	for _, k := range []string{images.LabelVersion, images.LabelRevision, images.LabelSource, images.LabelCreated} {
		if _, ok := cf.Config.Labels[k]; !ok {
			t.Errorf("%s: label %s missing", service, k)
		}
	}
	if got := cf.Config.Labels[images.LabelVersion]; got != version {
		t.Errorf("%s: version label %q, want %q", service, got, version)
	}
	if _, err := time.Parse(time.RFC3339, cf.Config.Labels[images.LabelCreated]); err != nil {
		t.Errorf("%s: created label: %v", service, err)
	}
	files, err := images.Files(img)
	if err != nil {
		t.Fatal(err)
	}
	if f, ok := files[bin]; !ok || f.Mode.Perm() != 0o755 || f.UID != 0 {
		t.Errorf("%s: binary %+v (present %v), want mode 0755 owned by root", service, f, ok)
	}
	if f, ok := files["/tmp"]; !ok || f.Mode&os.ModeSticky == 0 || f.Mode.Perm() != 0o777 {
		t.Errorf("%s: /tmp %+v (present %v), want 1777", service, f, ok)
	}
	if f := files[images.CACertsPath]; f.Size == 0 {
		t.Errorf("%s: no CA certificates at %s", service, images.CACertsPath)
	}
	passwd, err := images.ReadFile(img, "/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(passwd), ":65532:65532:") {
		t.Errorf("%s: /etc/passwd has no user 65532:\n%s", service, passwd)
	}
	b, err := images.ReadFile(img, bin)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readBack reads the archive both ways a registry client does: as an OCI layout and as a
// `docker save` tarball; both must give the same image.
func readBack(t *testing.T, file, ref string) v1.Image {
	t.Helper()
	img, err := images.ReadArchive(file, ref, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	docker, err := images.ReadDockerArchive(file, ref)
	if err != nil {
		t.Fatal(err)
	}
	want, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	got, err := docker.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("docker manifest.json config %s, want the OCI layout's %s", got, want)
	}
	return img
}

func TestBuildAndReadBack(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	binPath := filepath.Join(dir, "dispatcher")
	if err := os.WriteFile(binPath, []byte("not really an ELF"), 0o600); err != nil {
		t.Fatal(err)
	}
	spec := images.Spec{
		Name: "dispatcher", Binary: binPath, CACerts: []byte(testCerts),
		Version: "1.2.3", Revision: "abc", Source: "https://example.com/src", Created: time.Unix(1700000000, 0).UTC(),
	}
	img, err := images.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	ref := images.Repository(images.DefaultRegistry, "dispatcher") + ":1.2.3"
	file := filepath.Join(dir, "dispatcher.tar")
	if err := images.WriteArchive(file, ref, img); err != nil {
		t.Fatal(err)
	}
	back := readBack(t, file, ref)
	if b := check(t, back, "dispatcher", "1.2.3"); string(b) != "not really an ELF" {
		t.Errorf("binary: got %q", b)
	}

	// What docs/operations.md tells ops to run (crane push FILE REF) works against a registry.
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	pushed := strings.TrimPrefix(reg.URL, "http://") + "/webhooks-dispatcher:1.2.3"
	local, err := crane.Load(file)
	if err != nil {
		t.Fatalf("crane load: %v", err)
	}
	if err := crane.Push(local, pushed, crane.Insecure); err != nil {
		t.Fatalf("crane push: %v", err)
	}
	remote, err := crane.Digest(pushed, crane.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := local.Digest(); d.String() != remote {
		t.Errorf("pushed digest %s, want %s", remote, d)
	}

	// The same inputs give the same digest: a rebuild of a release is verifiable.
	again, err := images.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Errorf("rebuild digest %s, want %s", d2, d1)
	}
	if _, err := images.ReadArchive(file, images.Repository(images.DefaultRegistry, "contacts")+":1.2.3", t.TempDir()); err == nil {
		t.Errorf("reading a tag the tarball does not hold succeeded")
	}
}

// TestMadeImages reads back what `make images` wrote (IMAGES_DIR, tagged IMAGES_VERSION): .ci/run
// runs it after building, so an image that would not start (no entrypoint, root user, dynamic
// binary, missing labels) cannot land. Without IMAGES_DIR it has nothing to read.
func TestMadeImages(t *testing.T) {
	dir, version := os.Getenv("IMAGES_DIR"), os.Getenv("IMAGES_VERSION")
	if dir == "" {
		t.Skip("IMAGES_DIR unset: run `make check-images`")
	}
	if version == "" {
		t.Fatal("IMAGES_VERSION unset")
	}
	for _, svc := range images.Services {
		t.Run(svc, func(t *testing.T) {
			ref := images.Repository(images.DefaultRegistry, svc) + ":" + version
			img := readBack(t, filepath.Join(dir, svc+".tar"), ref)
			b := check(t, img, svc, version)
			f, err := elf.NewFile(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("binary is not ELF: %v", err)
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP {
					t.Errorf("binary is dynamically linked: it would not start on a scratch base")
				}
			}
			if f.Machine != elf.EM_X86_64 && f.Machine != elf.EM_AARCH64 {
				t.Errorf("binary machine %v", f.Machine)
			}
			if !bytes.Contains(b, []byte(version)) {
				t.Errorf("binary does not carry the version %q (-ldflags -X main.version)", version)
			}
		})
	}
}
