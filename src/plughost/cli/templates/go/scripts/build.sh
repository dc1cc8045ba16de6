#!/bin/sh
# Builds bin/@ID_DASHED@ in GOPATH mode against Debian's golang-*-dev packages (no module proxy):
#   apt-get install golang-go golang-github-hashicorp-go-plugin-dev golang-google-grpc-dev
# The host runs this itself when it loads the plugin and the binary is missing, with
# PLUGHOST_GO_SDK naming plughost's Go client (plughost/hostapi); by hand:
#   PLUGHOST_GO_SDK="$(python -m plughost.sdk.golang)" sh scripts/build.sh
set -eu
cd "$(dirname "$0")/.."
if [ -z "${PLUGHOST_GO_SDK:-}" ]; then
	echo 'PLUGHOST_GO_SDK is not set: it names the Go client of plughost (plughost/hostapi); by hand:' >&2
	echo '  PLUGHOST_GO_SDK="$(python -m plughost.sdk.golang)" sh scripts/build.sh' >&2
	exit 2
fi
export GO111MODULE=off
export GOPATH="${GOPATH:-${HOME:-/tmp}/go}:/usr/share/gocode:$PLUGHOST_GO_SDK"
mkdir -p bin
go build -o bin/@ID_DASHED@ .
