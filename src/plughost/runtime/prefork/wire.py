"""What the host and the worker template share: the link's messages and where cloning works."""

from __future__ import annotations

import os
import platform
import sys

TEMPLATE_FD_ENV = "PLUGHOST_TEMPLATE_FD"  # the template's end of its link (a SOCK_SEQPACKET socket)
READY = b"R"  # template → host, once: imports done, requests welcome
FORK = b"F"  # host → template, with the descriptors [spec, stdout, stderr(, secret)]
MAX_FDS = 4
SYS_CLONE = {"x86_64": 56, "aarch64": 220}  # with a null stack, both take the flags first


def clone_supported() -> bool:
    """True where the template can fork workers (Linux on x86_64 or aarch64, with pidfds)."""
    return (
        sys.platform == "linux"
        and platform.machine() in SYS_CLONE
        and hasattr(os, "pidfd_open")
        and hasattr(os, "memfd_create")
    )
