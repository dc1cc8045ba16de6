"""Where plughost's Go client (`plughost/hostapi`: the host's message bus and shared state for a
go-plugin plugin) is installed, as a GOPATH root. The host puts it in `PLUGHOST_GO_SDK` when it
runs a plugin's `scripts/build.sh`; `python -m plughost.sdk.golang` prints it for a build by hand."""

from __future__ import annotations

from pathlib import Path

GO_CLIENT_ENV = "PLUGHOST_GO_SDK"
GO_CLIENT = Path(__file__).resolve().parent / "go"
"""The GOPATH root holding `src/plughost/hostapi`."""

if __name__ == "__main__":
    print(GO_CLIENT)
