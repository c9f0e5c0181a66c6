package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	configimpl "github.com/lazyscale/lazyscale/comp/core/config/impl"
)

// untar extracts an archive's regular files into dir.
func untar(t *testing.T, archive, dir string) {
	f, err := os.Open(archive)
	require.NoError(t, err)
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		require.NoError(t, err)
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		b, err := io.ReadAll(tr)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(p, b, 0o644))
	}
}

// imageFiles reads every regular file of an image's layers (later layers win).
func imageFiles(t *testing.T, rcs []io.ReadCloser) map[string][]byte {
	out := map[string][]byte{}
	for _, rc := range rcs {
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
			if h.Typeflag == tar.TypeReg {
				b, err := io.ReadAll(tr)
				require.NoError(t, err)
				out["/"+h.Name] = b
			}
		}
		require.NoError(t, rc.Close())
	}
	return out
}

// The archive holds a multi-arch OCI index and docker's manifest.json; each platform's image
// runs the static binary as the nonroot user, with no shell, the CA certificates, and the
// config file the chart mounts at the path it passes to --config.
func TestImage(t *testing.T) {
	out := filepath.Join(t.TempDir(), "lazyscale.tar")
	require.NoError(t, build(options{Version: "v0.0.0-test", Revision: "abc123", Out: out, Tag: "lazyscale:v0.0.0-test",
		CACerts: "/etc/ssl/certs/ca-certificates.crt", HostArch: runtime.GOARCH, Platforms: []string{"linux/amd64", "linux/arm64"}}))
	dir := t.TempDir()
	untar(t, out, dir)

	var docker []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &docker))
	require.Len(t, docker, 1)
	assert.Equal(t, []string{"lazyscale:v0.0.0-test"}, docker[0].RepoTags)
	for _, l := range append([]string{docker[0].Config}, docker[0].Layers...) {
		assert.FileExists(t, filepath.Join(dir, l), "docker's manifest names blobs of the layout")
	}

	top, err := layout.ImageIndexFromPath(dir)
	require.NoError(t, err)
	topManifest, err := top.IndexManifest()
	require.NoError(t, err)
	require.Len(t, topManifest.Manifests, 1)
	assert.Equal(t, "lazyscale:v0.0.0-test", topManifest.Manifests[0].Annotations["org.opencontainers.image.ref.name"])
	idx, err := top.ImageIndex(topManifest.Manifests[0].Digest)
	require.NoError(t, err)
	im, err := idx.IndexManifest()
	require.NoError(t, err)
	arches := map[string]bool{}
	for _, m := range im.Manifests {
		require.NotNil(t, m.Platform)
		arches[m.Platform.Architecture] = true
		img, err := idx.Image(m.Digest)
		require.NoError(t, err)
		cfg, err := img.ConfigFile()
		require.NoError(t, err)
		assert.Equal(t, m.Platform.Architecture, cfg.Architecture)
		assert.Equal(t, []string{BinaryPath}, cfg.Config.Entrypoint)
		assert.Equal(t, "65532:65532", cfg.Config.User)
		assert.Equal(t, "v0.0.0-test", cfg.Config.Labels["org.opencontainers.image.version"])
		assert.Equal(t, "abc123", cfg.Config.Labels["org.opencontainers.image.revision"])
		assert.NotEmpty(t, cfg.Config.Labels["org.opencontainers.image.source"])

		layers, err := img.Layers()
		require.NoError(t, err)
		var rcs []io.ReadCloser
		for _, l := range layers {
			rc, err := l.Uncompressed()
			require.NoError(t, err)
			rcs = append(rcs, rc)
		}
		files := imageFiles(t, rcs)
		assert.NotContains(t, files, "/bin/sh", "no shell")
		assert.NotEmpty(t, files[CACertPath])
		assert.Contains(t, string(files["/etc/passwd"]), "nonroot:x:65532:65532")
		cfgFile := filepath.Join(t.TempDir(), "config.yaml")
		require.NoError(t, os.WriteFile(cfgFile, files[ConfigPath], 0o600))
		_, err = configimpl.Load(cfgFile, []string{}, nil)
		assert.NoError(t, err, "the image's config at %s loads", ConfigPath)

		f, err := elf.NewFile(bytes.NewReader(files[BinaryPath]))
		require.NoError(t, err, "the binary is an ELF file")
		for _, p := range f.Progs {
			assert.NotEqual(t, elf.PT_INTERP, p.Type, "the %s binary is static", m.Platform.Architecture)
		}
		wantMachine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[m.Platform.Architecture]
		assert.Equal(t, wantMachine, f.Machine)
	}
	assert.Equal(t, map[string]bool{"amd64": true, "arm64": true}, arches)
}
