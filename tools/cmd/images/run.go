package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/customertext/webhooks/tools/images"
)

// validTag is the OCI distribution spec's tag grammar.
var validTag = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

type config struct {
	Root, Out, Registry, CACerts string
	Version, Revision, Source    string
	Arch                         string
	Created                      time.Time
	Services                     []string
}

func parseConfig(args []string, getenv func(string) string, out io.Writer) (config, error) {
	fs := flag.NewFlagSet("images", flag.ContinueOnError)
	fs.SetOutput(out)
	var c config
	var services, epoch string
	fs.StringVar(&c.Root, "root", "..", "repository root (holding services/)")
	fs.StringVar(&c.Out, "out", "../.bin/images", "directory the <service>.tar files are written to")
	fs.StringVar(&c.Registry, "registry", images.DefaultRegistry, "repository prefix of the image names")
	fs.StringVar(&c.CACerts, "ca-certs", "/etc/ssl/certs/ca-certificates.crt", "PEM bundle of CA certificates copied into every image")
	fs.StringVar(&c.Version, "version", getenv("VERSION"), "version stamped into every binary (main.version), image tag and label (env VERSION, required)")
	fs.StringVar(&c.Revision, "revision", getenv("REVISION"), "source revision label (env REVISION)")
	fs.StringVar(&c.Source, "source", "https://github.com/customertext/webhooks", "source repository label")
	fs.StringVar(&c.Arch, "arch", "amd64", "GOARCH of the binaries")
	fs.StringVar(&epoch, "created", getenv("SOURCE_DATE_EPOCH"), "unix time of the image's creation and of its files (env SOURCE_DATE_EPOCH; default now)")
	fs.StringVar(&services, "services", strings.Join(images.Services, ","), "comma-separated services to build")
	if err := fs.Parse(args); err != nil {
		return config{}, fmt.Errorf("parse flags: %w", err)
	}
	if !validTag.MatchString(c.Version) {
		return config{}, fmt.Errorf("-version %q: want an image tag ([A-Za-z0-9_][A-Za-z0-9_.-]*)", c.Version)
	}
	c.Created = time.Now().UTC().Truncate(time.Second)
	if epoch != "" {
		n, err := strconv.ParseInt(epoch, 10, 64)
		if err != nil {
			return config{}, fmt.Errorf("-created %q: want unix seconds", epoch)
		}
		c.Created = time.Unix(n, 0).UTC()
	}
	c.Services = strings.Split(services, ",")
	return c, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := parseConfig(args, getenv, stdout)
	if err != nil {
		return err
	}
	certs, err := os.ReadFile(cfg.CACerts)
	if err != nil {
		return fmt.Errorf("read CA certificates: %w", err)
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return fmt.Errorf("create output directory: %w", err)
	}
	work, err := os.MkdirTemp("", "images-")
	if err != nil {
		return fmt.Errorf("create build directory: %w", err)
	}
	defer os.RemoveAll(work)
	var errs []error
	for _, svc := range cfg.Services {
		if err := buildOne(ctx, cfg, certs, work, svc, stdout); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func buildOne(ctx context.Context, cfg config, certs []byte, work, svc string, stdout io.Writer) error {
	bin := filepath.Join(work, svc)
	build := exec.CommandContext(ctx, "go", "build", "-trimpath",
		"-ldflags", "-s -w -X main.version="+cfg.Version, "-o", bin, ".")
	build.Dir = filepath.Join(cfg.Root, "services", svc)
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+cfg.Arch, "GOFLAGS=-buildvcs=false")
	build.Stdout, build.Stderr = stdout, stdout
	if err := build.Run(); err != nil {
		return fmt.Errorf("build %s: %w", svc, err)
	}
	img, err := images.Build(images.Spec{
		Name: svc, Binary: bin, CACerts: certs, Arch: cfg.Arch,
		Version: cfg.Version, Revision: cfg.Revision, Source: cfg.Source, Created: cfg.Created,
	})
	if err != nil {
		return err
	}
	ref := images.Repository(cfg.Registry, svc) + ":" + cfg.Version
	file := filepath.Join(cfg.Out, svc+".tar")
	if err := images.WriteArchive(file, ref, img); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return fmt.Errorf("digest %s: %w", svc, err)
	}
	_, err = fmt.Fprintf(stdout, "%s\t%s\t%s\n", file, ref, digest)
	return err
}
