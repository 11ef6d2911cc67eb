package images

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// RefAnnotation names the image's reference in an OCI layout's index.json.
const RefAnnotation = "org.opencontainers.image.ref.name"

// WriteArchive writes img tagged ref to file as one tar holding both an OCI image layout
// (oci-layout, index.json, blobs/) and a manifest.json in the `docker save` format pointing at
// the same blobs, as `docker save` itself does since Docker 25. So `crane push FILE REF`,
// `docker load`, `skopeo copy oci-archive:FILE ...` and `podman load` all read it.
func WriteArchive(file, ref string, img v1.Image) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	dir, err := os.MkdirTemp("", "oci-layout-")
	if err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	defer os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("write %s: layout: %w", file, err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		RefAnnotation:              ref,
		"io.containerd.image.name": tag.Name(),
	})); err != nil {
		return fmt.Errorf("write %s: layout: %w", file, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	blob := func(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }
	entry := tarball.Descriptor{Config: blob(m.Config.Digest), RepoTags: []string{tag.String()}}
	for _, l := range m.Layers {
		entry.Layers = append(entry.Layers, blob(l.Digest))
	}
	docker, err := json.Marshal(tarball.Manifest{entry})
	if err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), docker, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	return tarDir(file, dir)
}

// ReadArchive reads back the image tagged ref from a file written by WriteArchive through its
// OCI layout, unpacked into scratch (which must outlive the image's use).
func ReadArchive(file, ref, scratch string) (v1.Image, error) {
	if err := untar(file, scratch); err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	idx, err := layout.ImageIndexFromPath(scratch)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	for _, d := range im.Manifests {
		if d.Annotations[RefAnnotation] == ref {
			img, err := idx.Image(d.Digest)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", file, err)
			}
			return img, nil
		}
	}
	return nil, fmt.Errorf("read %s: no image tagged %s", file, ref)
}

// ReadDockerArchive reads the image tagged ref through the archive's manifest.json, as
// `crane push` and `docker load` do.
func ReadDockerArchive(file, ref string) (v1.Image, error) {
	tag, err := name.NewTag(ref)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	img, err := tarball.ImageFromPath(file, &tag)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	return img, nil
}

// tarDir writes the files under dir into the tar file in lexical order.
func tarDir(file, dir string) (err error) {
	var paths []string
	if err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			paths = append(paths, p)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	sort.Strings(paths)
	f, err := os.Create(file)
	if err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("write %s: %w", file, cerr)
		}
	}()
	tw := tar.NewWriter(f)
	for _, p := range paths {
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return fmt.Errorf("write %s: %w", file, err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("write %s: %w", file, err)
		}
		if err := tw.WriteHeader(&tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return fmt.Errorf("write %s: %w", file, err)
		}
		if _, err := tw.Write(b); err != nil {
			return fmt.Errorf("write %s: %w", file, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	return nil
}

// untar unpacks the regular files of the tar file into dir, refusing paths that leave it.
func untar(file, dir string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		clean := filepath.Clean(filepath.FromSlash(h.Name))
		if filepath.IsAbs(clean) || strings.HasPrefix(clean, "..") {
			return fmt.Errorf("unsafe path %q", h.Name)
		}
		dst := filepath.Join(dir, clean)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		out, err := os.Create(dst)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, tr); err != nil {
			out.Close()
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
	}
}
