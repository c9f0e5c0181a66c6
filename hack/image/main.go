// Command image builds lazyscale's container image without a daemon and without pulling a
// base: the image is made from nothing but the static binary, the build machine's CA
// certificates, a nonroot user (65532) and an empty default config, with no shell. It is
// multi-arch (linux/amd64, linux/arm64) and written as one archive that docker load, podman
// load, kind load image-archive and ctr import accept: an OCI image layout with, beside it,
// the manifest.json docker load reads (for the host's architecture).
//
//	go run ./hack/image -version v1.2.3 -out bin/image/lazyscale.tar
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
)

func main() {
	var o options
	flag.StringVar(&o.Version, "version", "dev", "version stamped into the binary and the image labels")
	flag.StringVar(&o.Revision, "revision", "", "source revision for the labels")
	flag.StringVar(&o.Out, "out", "bin/image/lazyscale.tar", "the archive to write")
	flag.StringVar(&o.Tag, "tag", "", "image reference in the archive (default lazyscale:<version>)")
	platforms := flag.String("platforms", "linux/amd64,linux/arm64", "platforms, comma-separated")
	flag.StringVar(&o.CACerts, "ca-certificates", "/etc/ssl/certs/ca-certificates.crt", "CA bundle copied into the image")
	flag.Parse()
	o.Platforms = strings.Split(*platforms, ",")
	o.HostArch = runtime.GOARCH
	if o.Tag == "" {
		o.Tag = "lazyscale:" + o.Version
	}
	if err := build(o); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
	fmt.Println("image:", o.Tag, "written to", o.Out, "for", *platforms)
}
