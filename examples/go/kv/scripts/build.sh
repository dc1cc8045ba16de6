#!/bin/sh
# Build in GOPATH mode against Debian's golang-*-dev packages (no module proxy needed):
#   apt-get install golang-go golang-github-hashicorp-go-plugin-dev golang-google-grpc-dev
# plughost's Go client (plughost/hostapi) lives in the repository's sdk/go; a copy of this
# directory elsewhere names it with PLUGHOST_GO_SDK=/path/to/plughost/sdk/go.
set -eu
cd "$(dirname "$0")/.."
export GO111MODULE=off
PLUGHOST_GO_SDK="${PLUGHOST_GO_SDK:-$(pwd)/../../../sdk/go}"
export GOPATH="${GOPATH:-${HOME:-/tmp}/go}:/usr/share/gocode:$PLUGHOST_GO_SDK"
mkdir -p bin
go build -o bin/kv .
