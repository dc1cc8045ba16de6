"""The plugin market: indexes of plugins, installs with mandatory integrity, versions with rollback.

```python
from plughost import Host
from plughost.market import Market

async with Host("workspace") as host:
    market = Market.for_manager(host.manager)      # installs load in this host at once
    await market.refresh()
    report = await market.install("weather")       # dependencies first; checked, unpacked, loaded
    await market.update("weather")
    await market.rollback("weather")               # back to the version before (a reload)
    await market.uninstall("weather", purge=False)
```

Modules: `index` (the index format), `fetch` (reading indexes with a cache, downloads), `verify`
(SHA-256, signatures), `extract` (safe unpacking), `resolve` (versions and dependencies),
`requirements` (pip into the plugin's `.site`), `store` (installed plugins, history, kept
versions), `pack` (archives and index entries for authors), `market` (the `Market` itself).
See docs/market.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plughost.market.errors import ERROR_CODES, MarketError
    from plughost.market.extract import ArchiveLimits, extract_archive
    from plughost.market.fetch import Progress
    from plughost.market.index import IndexPlugin, IndexVersion, MarketIndex, parse_index
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
    from plughost.market.pack import Packed, pack_plugin
    from plughost.market.settings import IndexSource, MarketSettings

# imported on first use: the CLI reads `plughost.market.errors` without loading httpx or the host
_HOMES = {
    "ERROR_CODES": "errors",
    "MarketError": "errors",
    "ArchiveLimits": "extract",
    "extract_archive": "extract",
    "Progress": "fetch",
    "IndexPlugin": "index",
    "IndexVersion": "index",
    "MarketIndex": "index",
    "parse_index": "index",
    "Market": "market",
    "ChangeReport": "models",
    "History": "models",
    "InstalledList": "models",
    "PluginInfo": "models",
    "RefreshResult": "models",
    "RollbackResult": "models",
    "SearchResult": "models",
    "UninstallResult": "models",
    "Packed": "pack",
    "pack_plugin": "pack",
    "IndexSource": "settings",
    "MarketSettings": "settings",
}

__all__ = [
    "ERROR_CODES",
    "ArchiveLimits",
    "ChangeReport",
    "History",
    "IndexPlugin",
    "IndexSource",
    "IndexVersion",
    "InstalledList",
    "Market",
    "MarketError",
    "MarketIndex",
    "MarketSettings",
    "Packed",
    "PluginInfo",
    "Progress",
    "RefreshResult",
    "RollbackResult",
    "SearchResult",
    "UninstallResult",
    "extract_archive",
    "pack_plugin",
    "parse_index",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'plughost.market' has no attribute '{name}'")
    return getattr(importlib.import_module(f"plughost.market.{home}"), name)


def __dir__() -> list[str]:
    return __all__
