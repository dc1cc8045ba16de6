#!/bin/sh
# Build in GOPATH mode against Debian's golang-*-dev packages (no module proxy needed):
#   apt-get install golang-go golang-github-hashicorp-go-plugin-dev golang-google-grpc-dev
set -eu
cd "$(dirname "$0")/.."
export GO111MODULE=off
export GOPATH="${GOPATH:-${HOME:-/tmp}/go}:/usr/share/gocode"
mkdir -p bin
go build -o bin/jank-echo .
