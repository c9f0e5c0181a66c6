package main

import (
	"archive/tar"
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// defaultConfig is the image's config file (the Dockerfile copies the same file).
//
//go:embed config.yaml
var defaultConfig []byte

// Paths and identity inside the image; the chart relies on them.
const (
	BinaryPath = "/lazyscale"
	// ConfigPath is where the chart mounts the config; the image has an empty one there, so
	// the command line the chart uses works without the mount too.
	ConfigPath = "/etc/lazyscale/config.yaml"
	CACertPath = "/etc/ssl/certs/ca-certificates.crt"
	// UID and GID of the nonroot user (distroless's convention).
	UID = 65532
)

type options struct {
	Version, Revision, Out, Tag, CACerts, HostArch string
	Platforms                                      []string
	// Root is the module root to build from; "" finds it with go env GOMOD.
	Root string
}

// file is one entry of a layer.
type file struct {
	name     string
	mode     int64
	dir      bool
	uid, gid int
	data     []byte
}

func layer(files []file) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: strings.TrimPrefix(f.name, "/"), Mode: f.mode, Uid: f.uid, Gid: f.gid, Format: tar.FormatPAX}
		if f.dir {
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.OCILayer))
}

// baseFiles are the image's files but the binary: a nonroot user, CA certificates, an empty
// config, a writable /tmp. No shell, no package manager.
func baseFiles(caCerts []byte) []file {
	return []file{
		{name: "/etc", mode: 0o755, dir: true},
		{name: "/etc/passwd", mode: 0o644, data: []byte(fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", UID, UID))},
		{name: "/etc/group", mode: 0o644, data: []byte(fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", UID))},
		{name: "/etc/ssl", mode: 0o755, dir: true},
		{name: "/etc/ssl/certs", mode: 0o755, dir: true},
		{name: CACertPath, mode: 0o644, data: caCerts},
		{name: "/etc/lazyscale", mode: 0o755, dir: true},
		{name: ConfigPath, mode: 0o644, data: defaultConfig},
		{name: "/home", mode: 0o755, dir: true},
		{name: "/home/nonroot", mode: 0o700, dir: true, uid: UID, gid: UID},
		{name: "/tmp", mode: 0o1777, dir: true},
	}
}

func moduleRoot(root string) (string, error) {
	if root != "" {
		return root, nil
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

// compile builds the static binary for one platform.
func compile(root, version, goos, goarch string) ([]byte, error) {
	out := filepath.Join(os.TempDir(), fmt.Sprintf("lazyscale-image-%d-%s-%s", os.Getpid(), goos, goarch))
	defer os.Remove(out)
	ldflags := "-s -w -X github.com/lazyscale/lazyscale/comp/core/version.Version=" + version
	if commit, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output(); err == nil {
		// The machine may build with -buildvcs=false: the binary then carries no revision.
		ldflags += " -X github.com/lazyscale/lazyscale/comp/core/version.Commit=" + strings.TrimSpace(string(commit))
	}
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", ldflags, "-o", out, "./cmd/lazyscale")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build %s/%s: %w\n%s", goos, goarch, err, b)
	}
	return os.ReadFile(out)
}

func platformImage(base v1.Layer, binary []byte, o options, goos, goarch string) (v1.Image, error) {
	bin, err := layer([]file{{name: BinaryPath, mode: 0o755, data: binary}})
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{CreatedBy: "lazyscale hack/image: base files", Created: v1.Time{Time: time.Unix(0, 0).UTC()}}},
		mutate.Addendum{Layer: bin, History: v1.History{CreatedBy: "lazyscale hack/image: " + BinaryPath, Created: v1.Time{Time: time.Unix(0, 0).UTC()}}})
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = goos, goarch
	cfg.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	cfg.Config.Entrypoint = []string{BinaryPath}
	cfg.Config.Cmd = []string{"run"}
	cfg.Config.User = fmt.Sprintf("%d:%d", UID, UID)
	cfg.Config.WorkingDir = "/home/nonroot"
	cfg.Config.Env = []string{"SSL_CERT_FILE=" + CACertPath}
	cfg.Config.Labels = labels(o)
	return mutate.ConfigFile(img, cfg)
}

func labels(o options) map[string]string {
	l := map[string]string{
		"org.opencontainers.image.title":    "lazyscale",
		"org.opencontainers.image.version":  o.Version,
		"org.opencontainers.image.source":   "https://github.com/lazyscale/lazyscale",
		"org.opencontainers.image.licenses": "Apache-2.0",
	}
	if o.Revision != "" {
		l["org.opencontainers.image.revision"] = o.Revision
	}
	return l
}

func build(o options) error {
	root, err := moduleRoot(o.Root)
	if err != nil {
		return err
	}
	caCerts, err := os.ReadFile(o.CACerts)
	if err != nil {
		return fmt.Errorf("CA certificates: %w", err)
	}
	base, err := layer(baseFiles(caCerts))
	if err != nil {
		return err
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var hostImage v1.Image
	for _, p := range o.Platforms {
		goos, goarch, ok := strings.Cut(p, "/")
		if !ok {
			return fmt.Errorf("platform %q: want os/arch", p)
		}
		binary, err := compile(root, o.Version, goos, goarch)
		if err != nil {
			return err
		}
		img, err := platformImage(base, binary, o, goos, goarch)
		if err != nil {
			return err
		}
		if goarch == o.HostArch || hostImage == nil {
			hostImage = img
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: goos, Architecture: goarch}}})
	}
	if hostImage == nil {
		return errors.New("no platform")
	}
	dir, err := os.MkdirTemp("", "lazyscale-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	ref := o.Tag
	if !strings.Contains(ref, "/") {
		ref = "docker.io/library/" + ref
	}
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": o.Tag,
		"io.containerd.image.name":          ref,
	})); err != nil {
		return err
	}
	if err := dockerManifest(dir, hostImage, o.Tag); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(o.Out), 0o755); err != nil {
		return err
	}
	return tarDir(dir, o.Out)
}

// dockerManifest writes the manifest.json docker load reads, for one platform's image whose
// blobs the layout already holds.
func dockerManifest(dir string, img v1.Image, tag string) error {
	cfg, err := img.ConfigName()
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	entry := struct {
		Config   string
		RepoTags []string
		Layers   []string
	}{Config: "blobs/sha256/" + cfg.Hex, RepoTags: []string{tag}}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		entry.Layers = append(entry.Layers, "blobs/sha256/"+d.Hex)
	}
	b, err := json.Marshal([]any{entry})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "manifest.json"), b, 0o644)
}

// tarDir writes dir's files into a tar at out, sorted, with fixed times: the same inputs give
// the same archive.
func tarDir(dir, out string) error {
	var names []string
	if err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			names = append(names, rel)
		}
		return nil
	}); err != nil {
		return err
	}
	sort.Strings(names)
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return errors.Join(err, f.Close())
		}
		h := &tar.Header{Name: filepath.ToSlash(name), Mode: 0o644, Size: int64(len(b)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(h); err != nil {
			return errors.Join(err, f.Close())
		}
		if _, err := tw.Write(b); err != nil {
			return errors.Join(err, f.Close())
		}
	}
	return errors.Join(tw.Close(), f.Close())
}
