#!/usr/bin/env bash
# Puts promtool and prometheus into the folder given ($1, default .bin): Debian's `prometheus`
# package, downloaded and unpacked without installing it (no service is started, nothing outside
# the repo changes). Cached under .cache/prometheus, so later runs are offline.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-.bin}
if [ -x "$bin/promtool" ] && [ -x "$bin/prometheus" ]; then
	exit 0
fi
mkdir -p "$bin"
if command -v promtool >/dev/null && command -v prometheus >/dev/null; then
	ln -sf "$(command -v promtool)" "$bin/promtool"
	ln -sf "$(command -v prometheus)" "$bin/prometheus"
	exit 0
fi
cache=.cache/prometheus
mkdir -p "$cache"
if ! ls "$cache"/prometheus_*.deb >/dev/null 2>&1; then
	# apt-get download needs the package lists; a fresh machine may have none yet.
	(cd "$cache" && apt-get download prometheus) || { apt-get update -qq && (cd "$cache" && apt-get download prometheus); }
fi
rm -rf "$cache/root"
dpkg-deb -x "$(ls "$cache"/prometheus_*.deb | head -1)" "$cache/root"
ln -sf "$PWD/$cache/root/usr/bin/promtool" "$bin/promtool"
ln -sf "$PWD/$cache/root/usr/bin/prometheus" "$bin/prometheus"
"$bin/promtool" --version | head -1
