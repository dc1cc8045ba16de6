#!/bin/sh
# Builds bin/@ID_DASHED@ in GOPATH mode against Debian's golang-*-dev packages (no module proxy):
#   apt-get install golang-go golang-github-hashicorp-go-plugin-dev golang-google-grpc-dev
# The host runs this itself when it loads the plugin and the binary is missing.
set -eu
cd "$(dirname "$0")/.."
export GO111MODULE=off
export GOPATH="${GOPATH:-${HOME:-/tmp}/go}:/usr/share/gocode"
mkdir -p bin
go build -o bin/@ID_DASHED@ .
