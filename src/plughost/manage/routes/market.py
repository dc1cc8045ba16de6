"""`/api/v1/market`: the plugin market of the running host (search, install, update, roll back, uninstall).

Installs and updates answer when they are done (download, checks, unpacking, pip, loading), with
what changed; a failure answers the one error shape, and nothing was installed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from plughost.manage.errors import ERROR_RESPONSES, ApiError, ErrorResponse
from plughost.market.errors import MarketError
from plughost.market.market import Market
from plughost.market.models import (
    ChangeReport,
    History,
    InstalledList,
    PluginInfo,
    RefreshResult,
    RollbackResult,
    SearchResult,
    UninstallResult,
)
from plughost.sdk.manifest import PLUGIN_ID_PATTERN

RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    502: {"model": ErrorResponse, "description": "An index or download was unusable (invalid, checksum, archive, pip)"},
}
router = APIRouter(prefix="/api/v1/market", tags=["market"], responses=RESPONSES)
T = TypeVar("T")
PluginId = Annotated[str, Field(pattern=PLUGIN_ID_PATTERN, description="Plugin id.")]


def market(request: Request) -> Market:
    """FastAPI dependency: the host's market (made with the app)."""
    found: Market = request.app.state.market
    return found


MarketDep = Annotated[Market, Depends(market)]


async def answer(work: Awaitable[T]) -> T:
    """The result, or the market's error in the one error shape."""
    try:
        return await work
    except MarketError as exc:
        raise api_error(exc) from None


def answer_now(work: Callable[[], T]) -> T:
    try:
        return work()
    except MarketError as exc:
        raise api_error(exc) from None


def api_error(exc: MarketError) -> ApiError:
    return ApiError(exc.status, exc.code, str(exc), exc.detail)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InstallRequest(_Body):
    id: PluginId
    version: str | None = Field(default=None, description="A version; default the newest that fits.")
    enable: bool = Field(default=True, description="Enable it once loaded (dependencies always are).")


class UpdateRequest(_Body):
    id: PluginId | None = Field(default=None, description="The plugin to update; null with all=true.")
    all: bool = Field(default=False, description="Update every plugin the market installed.")


class UninstallRequest(_Body):
    id: PluginId
    purge: bool = Field(default=False, description="Remove its configuration and data too.")
    force: bool = Field(default=False, description="Even though other plugins depend on it.")


class RollbackRequest(_Body):
    id: PluginId
    version: str | None = Field(default=None, description="A kept version; default the one used before.")


@router.post("/refresh", response_model=RefreshResult, summary="Fetch every configured index now")
async def refresh(market: MarketDep) -> RefreshResult:
    """An index that cannot be fetched falls back to its cached copy (`warnings` says so)."""
    return await answer(market.refresh())


@router.get("/search", response_model=SearchResult, summary="Search the indexes")
async def search(
    market: MarketDep,
    q: Annotated[str, Query(max_length=200, description="Words to find in id, name, description, tags.")] = "",
    tag: Annotated[str | None, Query(max_length=100, description="Only plugins with this tag.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
) -> SearchResult:
    return await answer(market.search(q, tag=tag, limit=limit))


@router.get("/plugins/{plugin_id}", response_model=PluginInfo, summary="One plugin of the indexes")
async def info(
    market: MarketDep,
    plugin_id: str,
    version: Annotated[str | None, Query(max_length=100, description="Only this version.")] = None,
) -> PluginInfo:
    return await answer(market.info(plugin_id, version))


@router.get("/installed", response_model=InstalledList, summary="Plugins the market installed")
async def installed(market: MarketDep) -> InstalledList:
    return answer_now(market.installed)


@router.post("/install", response_model=ChangeReport, summary="Install a plugin with its dependencies")
async def install(market: MarketDep, request: InstallRequest) -> ChangeReport:
    """Answers when the plugin (and what it needs) is installed, loaded and enabled — or not at all."""
    return await answer(market.install(request.id, request.version, enable=request.enable))


@router.post("/update", response_model=ChangeReport, summary="Update one installed plugin, or all")
async def update(market: MarketDep, request: UpdateRequest) -> ChangeReport:
    return await answer(market.update(request.id, all_plugins=request.all))


@router.post("/uninstall", response_model=UninstallResult, summary="Stop a plugin and remove its files")
async def uninstall(market: MarketDep, request: UninstallRequest) -> UninstallResult:
    """Refused (409 has_dependents) while other plugins depend on it, unless `force`."""
    return await answer(market.uninstall(request.id, purge=request.purge, force=request.force))


@router.post("/rollback", response_model=RollbackResult, summary="Switch back to a kept version")
async def rollback(market: MarketDep, request: RollbackRequest) -> RollbackResult:
    return await answer(market.rollback(request.id, request.version))


@router.get("/history/{plugin_id}", response_model=History, summary="What was installed when")
async def history(market: MarketDep, plugin_id: str) -> History:
    return answer_now(lambda: market.history(plugin_id))
