"""Property-based requests for every documented operation of the management API (schemathesis):
whatever a client sends, the server answers without a 5xx, in the documented shapes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.manage.conftest import PLAIN_PLUGIN, SETTINGS_PLUGIN, SETTINGS_SCHEMA
from tests.manage.support import LiveServer


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    workspace = tmp_path_factory.mktemp("schemathesis")
    for plugin_id, code, extra in (("settings", SETTINGS_PLUGIN, SETTINGS_SCHEMA), ("plain", PLAIN_PLUGIN, "")):
        directory = workspace / "plugins" / plugin_id
        directory.mkdir(parents=True)
        (directory / "plugin.toml").write_text(f'id = "{plugin_id}"\nversion = "1.0.0"\n{extra}', encoding="utf-8")
        (directory / "plugin.py").write_text(code, encoding="utf-8")
    with LiveServer(workspace) as server:
        yield server


def test_no_request_makes_the_server_fail(live: LiveServer) -> None:
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    # plugin routes are dynamic (a plugin's own 502 is its answer), streams never end (tested apart),
    # deleting would remove the fixtures' files
    schema = schema.exclude(path_regex=r"^/v0/(management/\{path\}|resource/)|/stream$").exclude(method="DELETE")
    headers = {"Authorization": f"Bearer {live.key}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    answered: list[int] = []

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def answered_without_a_server_error(case: schemathesis.Case) -> None:
            if case.path == "/api/v1/console" and isinstance(case.body, dict):
                case.body["command"] = str(case.body.get("command", "")).replace("/stop", "/status")
            response = case.call(headers=headers, timeout=30)
            answered.append(response.status_code)
            assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text[:500]}"
            if response.status_code >= 400 and case.path.startswith("/api/v1/plugins/"):
                assert set(response.json()["error"]) == {"code", "message", "detail"}

        answered_without_a_server_error()
    assert len(answered) >= 5 * len(operations)
    assert any(status < 300 for status in answered) and any(status == 422 for status in answered)
