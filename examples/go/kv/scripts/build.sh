#!/bin/sh
# Build in GOPATH mode against Debian's golang-*-dev packages (no module proxy needed):
#   apt-get install golang-go golang-github-hashicorp-go-plugin-dev golang-google-grpc-dev
# plughost's Go client (plughost/hostapi) comes from PLUGHOST_GO_SDK, which the host sets when it
# runs this script (by hand: PLUGHOST_GO_SDK="$(python -m plughost.sdk.golang)"); in the
# repository it defaults to sdk/go.
set -eu
cd "$(dirname "$0")/.."
export GO111MODULE=off
PLUGHOST_GO_SDK="${PLUGHOST_GO_SDK:-$(pwd)/../../../sdk/go}"
export GOPATH="${GOPATH:-${HOME:-/tmp}/go}:/usr/share/gocode:$PLUGHOST_GO_SDK"
mkdir -p bin
go build -o bin/kv .
