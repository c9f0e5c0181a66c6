#!/usr/bin/env bash
# Installs the headless browser the /ui test drives (test/e2e TestUIInABrowser): Debian's
# chromium package, and a font for its screenshots. Does nothing when a chromium is on PATH or
# $CHROMIUM is set.
set -euo pipefail
if [[ -n "${CHROMIUM:-}" ]] || command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
	exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "hack/chromium.sh: no chromium and no apt-get: install Chromium and set CHROMIUM to its path" >&2
	exit 1
fi
sudo=()
if [[ $(id -u) != 0 ]]; then
	sudo=(sudo)
fi
echo "installing chromium (Debian package) for the /ui browser test"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
command -v chromium
