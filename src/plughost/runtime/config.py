"""The runtimes' section of `plughost.toml`: `[process]`, timeouts, health and restarts of process
plugins and workers.

Plain data, so that the host configuration can validate it without importing a runtime;
`plughost.runtime.placement.process_options` turns it into the process runtime's options.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ProcessConfig(BaseModel):
    """Applies to executables and workers alike (a manifest's `start_timeout` and `limits.timeout_s` win).

    ```toml
    [process]
    start_timeout_s = 60        # handshake deadline
    call_timeout_s = 30         # deadline of every call
    health_interval_s = 10      # 0 turns the health monitor off
    health_failures = 2         # failed checks in a row before the plugin is killed and restarted
    max_restarts = 5            # per restart_window_s; then the plugin stays in `error`
    restart_window_s = 60
    socket_dir = "run"          # sockets go to <workspace>/run/<host pid>/ (default: .plughost/run)
    invoke_lane = true          # call workers over their invoke lane (false: gRPC only)
    prefork = true              # fork Python workers from a template (false: each starts python)
    ```
    """

    model_config = ConfigDict(extra="forbid")

    start_timeout_s: float = Field(default=60.0, gt=0)
    call_timeout_s: float = Field(default=30.0, gt=0)
    stop_grace_s: float = Field(default=2.0, ge=0)
    health_interval_s: float = Field(default=10.0, ge=0)
    health_timeout_s: float = Field(default=2.0, gt=0)
    health_failures: int = Field(default=2, ge=1)
    build_timeout_s: float = Field(default=300.0, gt=0)
    max_restarts: int = Field(default=5, ge=0)
    restart_window_s: float = Field(default=60.0, gt=0)
    restart_initial_delay_s: float = Field(default=0.1, ge=0)
    restart_max_delay_s: float = Field(default=10.0, ge=0)
    socket_dir: str | None = None
    invoke_lane: bool = True
    prefork: bool = True
