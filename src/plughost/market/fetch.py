"""Reading indexes (over HTTP(S) or from files) with a cache, and downloading archives.

Indexes are cached under `.plughost/market/indexes/<name>.json` (with `<name>.sig` and
`<name>.meta.json`), written atomically and only once they parsed and their signature verified.
When an index cannot be fetched (or what is fetched is invalid), the cached copy is used with a
warning. Downloads stream to a temporary file, hashed as they arrive; a download that ends early,
grows past its limit or has another SHA-256 than the index names is deleted and refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from plughost.core.files import remove_leftovers, write_atomic
from plughost.errors import StateFileError
from plughost.market.errors import CannotWrite, DownloadFailed, IndexUnavailable, InvalidIndex, MarketError
from plughost.market.index import MarketIndex, parse_index
from plughost.market.settings import IndexSource, MarketSettings
from plughost.market.verify import check_sha256, verify_signature

log = logging.getLogger("plughost.market")
CHUNK = 1 << 16


class Progress(Protocol):
    """Told how a download goes (the CLI draws a progress bar on a terminal)."""

    def start(self, label: str, total: int | None) -> None: ...

    def advance(self, amount: int) -> None: ...

    def finish(self) -> None: ...


class NoProgress:
    """Says nothing."""

    def start(self, label: str, total: int | None) -> None:
        return None

    def advance(self, amount: int) -> None:
        return None

    def finish(self) -> None:
        return None


@dataclass
class LoadedIndex:
    """An index as read: from the network or file (`from_cache` False) or from the cache."""

    source: IndexSource
    index: MarketIndex
    location: str  # where relative download URLs are resolved: the index's URL or absolute path
    fetched_at: float
    from_cache: bool = False
    signed_by: str | None = None
    warning: str | None = None


def user_agent() -> str:
    from plughost import __version__

    return f"plughost/{__version__}"


HUNG_UP_RETRIES = 2
"""How many more times a GET is sent when the server closed the connection without answering."""


def client(settings: MarketSettings) -> httpx.AsyncClient:
    """One HTTP client for one market operation (closed by the caller's `async with`)."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.timeout_s),
        follow_redirects=True,
        headers={"User-Agent": user_agent()},
        # a fresh connection per request (an index and a few archives): no request lost to a server
        # that closed an idle kept-alive connection; a refused or timed-out connect is tried again
        limits=httpx.Limits(max_keepalive_connections=0),
        transport=httpx.AsyncHTTPTransport(retries=2),
    )


def index_location(source: IndexSource, workspace: Path) -> str:
    """The index's URL, or the absolute path of a local index."""
    if source.remote:
        return source.url
    return str(_local_path(source.url, workspace))


def _local_path(url: str, base: Path) -> Path:
    if url.lower().startswith("file://"):
        return Path(unquote(urlsplit(url).path))
    path = Path(url).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def resolve_url(location: str, url: str) -> str:
    """A version's download URL made absolute against its index (URL or path).

    A remote index may only name http(s) archives: a `file:` URL there is refused.
    """
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    remote_index = location.lower().startswith(("http://", "https://"))
    if scheme in ("http", "https"):
        return url
    if scheme and scheme != "file":
        raise InvalidIndex(f"download URL '{url}': only http(s) (and files for local indexes) are supported")
    if remote_index:
        if scheme == "file":
            raise InvalidIndex(f"download URL '{url}': an index on the network cannot name local files")
        return urljoin(location, url)
    return str(_local_path(url, Path(location).parent))


async def read_source(
    location: str, http: httpx.AsyncClient, max_bytes: int, *, missing_ok: bool = False
) -> bytes | None:
    """The bytes at a URL or path (None when `missing_ok` and it does not exist); `IndexUnavailable` else."""
    if location.lower().startswith(("http://", "https://")):
        try:
            async with _get(http, location) as response:
                if response.status_code == 404 and missing_ok:
                    return None
                if response.status_code != 200:
                    raise IndexUnavailable(f"{location} answered {response.status_code} {response.reason_phrase}")
                data = bytearray()
                async for chunk in response.aiter_bytes(CHUNK):
                    data += chunk
                    if len(data) > max_bytes:
                        raise IndexUnavailable(f"{location} is larger than {max_bytes} bytes")
                return bytes(data)
        except httpx.HTTPError as exc:
            raise IndexUnavailable(f"{location} cannot be read: {_reason(exc)}") from None
    path = Path(location)
    try:
        if path.stat().st_size > max_bytes:
            raise IndexUnavailable(f"{path} is larger than {max_bytes} bytes")
        return path.read_bytes()
    except FileNotFoundError:
        if missing_ok:
            return None
        raise IndexUnavailable(f"{path} does not exist") from None
    except OSError as exc:
        raise IndexUnavailable(f"{path} cannot be read: {exc.strerror or exc}") from None


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, OSError) and cause.strerror:
        text = cause.strerror
    return text


class IndexCache:
    """The cached copies of the configured indexes."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _paths(self, name: str) -> tuple[Path, Path, Path]:
        return (
            self.directory / f"{name}.json",
            self.directory / f"{name}.sig",
            self.directory / f"{name}.meta.json",
        )

    def read(self, name: str) -> tuple[bytes, bytes | None, dict[str, Any]] | None:
        """(index bytes, signature, meta) or None when nothing usable is cached."""
        data_path, sig_path, meta_path = self._paths(name)
        for path in (data_path, sig_path, meta_path):
            remove_leftovers(path)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            data = data_path.read_bytes()
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict):
            return None
        try:
            signature: bytes | None = sig_path.read_bytes()
        except OSError:
            signature = None
        return data, signature, meta

    def write(self, name: str, data: bytes, signature: bytes | None, meta: dict[str, Any]) -> None:
        data_path, sig_path, meta_path = self._paths(name)
        try:
            write_atomic(data_path, data.decode("utf-8"), backup=False)
            if signature is not None:
                write_atomic(sig_path, signature.decode("ascii", "replace"), backup=False)
            else:
                sig_path.unlink(missing_ok=True)
            write_atomic(meta_path, json.dumps(meta, indent=2) + "\n", backup=False)
        except (StateFileError, OSError) as exc:
            raise CannotWrite(f"the index cache cannot be written: {exc}") from exc


class IndexReader:
    """Reads the configured indexes: fetched when the cache is older than `cache_ttl_s` (or `force`),
    else from the cache; an index that cannot be fetched falls back to its cache with a warning."""

    def __init__(self, settings: MarketSettings, workspace: Path, cache: IndexCache) -> None:
        self.settings = settings
        self.workspace = workspace
        self.cache = cache

    async def load(self, source: IndexSource, http: httpx.AsyncClient, *, force: bool) -> LoadedIndex:
        location = index_location(source, self.workspace)
        cached = self._cached(source, location)
        if cached is not None and not force and time.time() - cached.fetched_at < self.settings.cache_ttl_s:
            return cached
        try:
            return await self._fetch(source, location, http)
        except (IndexUnavailable, InvalidIndex) as exc:
            if cached is None:
                raise
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(cached.fetched_at))
            cached.warning = f"index '{source.name}': {exc}; using the copy cached at {when}"
            log.warning("%s", cached.warning)
            return cached

    def cached(self, source: IndexSource) -> LoadedIndex | None:
        """The cached copy of an index (never fetched); None when there is none usable."""
        return self._cached(source, index_location(source, self.workspace))

    def _cached(self, source: IndexSource, location: str) -> LoadedIndex | None:
        found = self.cache.read(source.name)
        if found is None:
            return None
        data, signature, meta = found
        if meta.get("url") != source.url:
            return None  # the configuration names another index now
        try:
            index, signer = self._check(source, data, signature, f"the cached index '{source.name}'")
        except MarketError as exc:
            log.warning("ignoring the cached index '%s': %s", source.name, exc)
            return None
        fetched_at = meta.get("fetched_at")
        return LoadedIndex(
            source,
            index,
            location,
            float(fetched_at) if isinstance(fetched_at, int | float) else 0.0,
            from_cache=True,
            signed_by=signer,
        )

    async def _fetch(self, source: IndexSource, location: str, http: httpx.AsyncClient) -> LoadedIndex:
        data = await read_source(location, http, self.settings.max_index_bytes)
        assert data is not None
        signature = None
        if source.signed_by:
            signature = await read_source(location + ".sig", http, 4096, missing_ok=True)
        index, signer = self._check(source, data, signature, f"index '{source.name}' ({source.url})")
        now = time.time()
        self.cache.write(source.name, data, signature, {"url": source.url, "fetched_at": now, "signed_by": signer})
        return LoadedIndex(source, index, location, now, signed_by=signer)

    def _check(
        self, source: IndexSource, data: bytes, signature: bytes | None, what: str
    ) -> tuple[MarketIndex, str | None]:
        signer = None
        if source.signed_by:
            signer = verify_signature(data, signature, self.settings.trusted_keys, source.signed_by, what)
        return parse_index(data, what), signer


async def download(
    url: str,
    destination: Path,
    *,
    http: httpx.AsyncClient,
    sha256: str,
    max_bytes: int,
    progress: Progress,
    label: str,
) -> int:
    """Fetch `url` into `destination` (must not exist) and check its SHA-256; the size in bytes.

    On any failure the file is removed: `DownloadFailed` (unreachable, cut short, too large),
    `ChecksumMismatch`, or `CannotWrite`.
    """
    digest = hashlib.sha256()
    size = 0
    try:
        with _create(destination) as out:
            if url.lower().startswith(("http://", "https://")):
                size = await _download_http(url, out, digest, http, max_bytes, progress, label)
            else:
                size = _copy_local(Path(url), out, digest, max_bytes, progress, label)
        check_sha256(digest.hexdigest(), sha256, f"download of {label} from {url}")
    except BaseException:
        with contextlib.suppress(OSError):
            destination.unlink()
        raise
    return size


@contextlib.contextmanager
def _create(destination: Path) -> Iterator[IO[bytes]]:
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        handle = destination.open("xb")
    except OSError as exc:
        raise CannotWrite(f"cannot write {destination}: {exc.strerror or exc}") from exc
    with handle:
        yield handle


@contextlib.asynccontextmanager
async def _get(http: httpx.AsyncClient, url: str) -> AsyncIterator[httpx.Response]:
    """A streamed GET of `url`, sent again (up to `HUNG_UP_RETRIES` times, on a new connection)
    when the server hangs up before answering; a GET is safe to repeat."""
    request = http.build_request("GET", url)
    for attempt in range(HUNG_UP_RETRIES + 1):
        try:
            response = await http.send(request, stream=True)
            break
        except httpx.RemoteProtocolError:
            if attempt == HUNG_UP_RETRIES:
                raise
    try:
        yield response
    finally:
        await response.aclose()


async def _download_http(
    url: str,
    out: IO[bytes],
    digest: Any,
    http: httpx.AsyncClient,
    max_bytes: int,
    progress: Progress,
    label: str,
) -> int:
    size = 0
    try:
        async with _get(http, url) as response:
            if response.status_code != 200:
                raise DownloadFailed(f"download of {label}: {url} answered {response.status_code}")
            announced = _content_length(response)
            if announced is not None and announced > max_bytes:
                raise DownloadFailed(f"download of {label}: {announced} bytes is more than the limit of {max_bytes}")
            progress.start(label, announced)
            try:
                too_large = f"download of {label}: more than the limit of {max_bytes} bytes"
                async for chunk in response.aiter_bytes(CHUNK):
                    size = _take(chunk, size, out, digest, progress, max_bytes, too_large)
            finally:
                progress.finish()
    except httpx.RemoteProtocolError as exc:
        raise DownloadFailed(f"download of {label} from {url} was cut short: {_reason(exc)}") from None
    except httpx.HTTPError as exc:
        raise DownloadFailed(f"download of {label} from {url} failed: {_reason(exc)}") from None
    if announced is not None and size != announced:
        raise DownloadFailed(f"download of {label} was cut short: {size} of {announced} bytes")
    return size


def _content_length(response: httpx.Response) -> int | None:
    try:
        value = int(response.headers.get("content-length", ""))
    except ValueError:
        return None
    return value if value >= 0 and "content-encoding" not in response.headers else None


def _copy_local(path: Path, out: IO[bytes], digest: Any, max_bytes: int, progress: Progress, label: str) -> int:
    try:
        source = path.open("rb")
    except OSError as exc:
        raise DownloadFailed(f"download of {label}: {path} cannot be read: {exc.strerror or exc}") from None
    size = 0
    with source:
        total = os.fstat(source.fileno()).st_size
        progress.start(label, total)
        try:
            too_large = f"{label}: {path} is larger than the limit of {max_bytes} bytes"
            while chunk := source.read(CHUNK):
                size = _take(chunk, size, out, digest, progress, max_bytes, too_large)
        finally:
            progress.finish()
    return size


def _take(
    chunk: bytes, size: int, out: IO[bytes], digest: Any, progress: Progress, max_bytes: int, too_large: str
) -> int:
    """Hash and write one chunk of a download that had `size` bytes before it; the new size
    (`DownloadFailed` with `too_large` past `max_bytes`)."""
    size += len(chunk)
    if size > max_bytes:
        raise DownloadFailed(too_large)
    digest.update(chunk)
    _write(out, chunk)
    progress.advance(len(chunk))
    return size


def _write(out: IO[bytes], chunk: bytes) -> None:
    try:
        out.write(chunk)
    except OSError as exc:
        raise CannotWrite(f"cannot write {out.name}: {exc.strerror or exc}") from exc


__all__ = [
    "IndexCache",
    "IndexReader",
    "LoadedIndex",
    "NoProgress",
    "Progress",
    "download",
    "index_location",
    "resolve_url",
]
