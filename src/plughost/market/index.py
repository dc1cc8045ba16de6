"""The index format: a JSON document listing plugins and their versions (see docs/market.md).

Every model forbids unknown keys, every version must be a semantic version that `packaging` can
order, and every version names the SHA-256 of its archive: an index without one is invalid.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from plughost.market.errors import InvalidIndex
from plughost.sdk.manifest import Author, RuntimeName, is_semver, is_valid_plugin_id

INDEX_FORMAT = 1
SHA256_PATTERN = r"^[0-9a-f]{64}$"
PLATFORM_PATTERN = r"^[a-z0-9]+/[a-z0-9_]+$"
_SHA256_RE = re.compile(SHA256_PATTERN)
_PLATFORM_RE = re.compile(PLATFORM_PATTERN)


def parse_version(value: str) -> Version:
    """A semantic version as `packaging` orders it; ValueError names what is wrong."""
    if not is_semver(value):
        raise ValueError(f"'{value}' is not a semantic version such as 1.2.3")
    try:
        return Version(value.split("+", 1)[0])
    except InvalidVersion:
        raise ValueError(
            f"'{value}' is a semantic version packaging cannot order: pre-releases are spelled "
            "-alpha.N, -beta.N, -rc.N or -dev.N"
        ) from None


def parse_plugin_requirement(spec: str) -> Requirement:
    """`other>=1.0` (a plugin id and an optional version range); ValueError says what is wrong."""
    try:
        requirement = Requirement(spec)
    except InvalidRequirement as exc:
        raise ValueError(f"'{spec}' is not a dependency such as 'other>=1.0': {exc}") from None
    if requirement.url or requirement.extras or requirement.marker:
        raise ValueError(f"'{spec}': a plugin dependency is an id and a version range, nothing more")
    if not is_valid_plugin_id(requirement.name):
        raise ValueError(f"'{spec}': '{requirement.name}' is not a valid plugin id")
    return requirement


def parse_python_requirement(spec: str) -> Requirement:
    """A PEP 508 requirement pip resolves from its package index; direct URLs are refused (they
    would bypass the index's checksums)."""
    try:
        requirement = Requirement(spec)
    except InvalidRequirement as exc:
        raise ValueError(f"'{spec}' is not a Python requirement such as 'requests>=2.31': {exc}") from None
    if requirement.url:
        raise ValueError(f"'{spec}': direct URL requirements are not accepted (name a version instead)")
    return requirement


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IndexVersion(_Strict):
    """One downloadable build of one version of a plugin."""

    version: str = Field(description="Semantic version (1.2.3, 1.3.0-rc.1).")
    url: str = Field(description="Archive (.tar.gz, .tar, .zip); relative URLs are relative to the index.")
    sha256: str = Field(description="SHA-256 of the archive, 64 hex digits. Required.")
    size: int | None = Field(default=None, ge=0, description="Archive size in bytes (informational).")
    runtime: RuntimeName = "python"
    platforms: list[str] = Field(
        default_factory=list, description="os/arch pairs (linux/amd64 …) the build runs on; empty: any (Python)."
    )
    plughost: str = Field(default="", description="plughost versions it works with, e.g. '>=0.1,<1'.")
    dependencies: list[str] = Field(default_factory=list, description="Plugin dependencies: 'other>=1.0'.")
    python: list[str] = Field(default_factory=list, description="Python requirements, installed with pip.")
    released: str | None = Field(default=None, description="Release date (informational).")

    @field_validator("version")
    @classmethod
    def _check_version(cls, value: str) -> str:
        parse_version(value)
        return value

    @field_validator("sha256", mode="before")
    @classmethod
    def _check_sha256(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower()
            if not _SHA256_RE.match(value):
                raise ValueError("sha256 must be 64 hexadecimal digits")
        return value

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the download url is empty")
        return value.strip()

    @field_validator("platforms")
    @classmethod
    def _check_platforms(cls, values: list[str]) -> list[str]:
        for value in values:
            if not _PLATFORM_RE.match(value):
                raise ValueError(f"'{value}' is not a platform such as linux/amd64")
        return values

    @field_validator("plughost")
    @classmethod
    def _check_range(cls, value: str) -> str:
        try:
            SpecifierSet(value)
        except InvalidSpecifier:
            raise ValueError(f"'{value}' is not a version range such as '>=0.1,<1'") from None
        return value

    @field_validator("dependencies")
    @classmethod
    def _check_dependencies(cls, values: list[str]) -> list[str]:
        for value in values:
            parse_plugin_requirement(value)
        return values

    @field_validator("python")
    @classmethod
    def _check_python(cls, values: list[str]) -> list[str]:
        for value in values:
            parse_python_requirement(value)
        return values

    @model_validator(mode="after")
    def _check_runtime(self) -> IndexVersion:
        if self.runtime != "python" and not self.platforms:
            raise ValueError(f"a {self.runtime} build must list the platforms it runs on (e.g. linux/amd64)")
        if self.runtime != "python" and self.python:
            raise ValueError("python requirements are only installed for runtime 'python'")
        return self

    @property
    def parsed(self) -> Version:
        return parse_version(self.version)

    def runs_on(self, platform: str) -> bool:
        return not self.platforms or platform in self.platforms


class IndexPlugin(_Strict):
    """A plugin an index offers, with every version."""

    id: str
    name: str = ""
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    author: str | Author | None = None
    homepage: str | None = None
    versions: list[IndexVersion] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not is_valid_plugin_id(value):
            raise ValueError(f"'{value}' is not a valid plugin id")
        return value

    @model_validator(mode="after")
    def _check_versions(self) -> IndexPlugin:
        seen: dict[str, set[str]] = {}
        for entry in self.versions:
            platforms = set(entry.platforms) or {"*"}
            taken = seen.setdefault(entry.version, set())
            if taken & platforms or (taken and "*" in platforms) or "*" in taken:
                raise ValueError(f"version {entry.version} is listed twice for the same platform")
            taken |= platforms
        return self

    @property
    def author_name(self) -> str:
        if isinstance(self.author, Author):
            return self.author.name
        return self.author or ""

    def version_numbers(self) -> list[str]:
        """Every version, newest first, each once."""
        unique = {entry.version: entry.parsed for entry in self.versions}
        return sorted(unique, key=lambda v: unique[v], reverse=True)

    def matches(self, words: str, tag: str | None = None) -> bool:
        """Does the plugin match a search (every word in id, name, description or tags) and the tag?"""
        if tag is not None and tag.casefold() not in (t.casefold() for t in self.tags):
            return False
        text = " ".join([self.id, self.name, self.description, *self.tags]).casefold()
        return all(word in text for word in words.casefold().split())


class MarketIndex(_Strict):
    """A whole index document."""

    format: Literal[1] = Field(default=1, description="Format version of the document (1).")
    name: str | None = Field(default=None, description="Informational: the publisher's name for the index.")
    description: str = ""
    plugins: list[IndexPlugin] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> MarketIndex:
        ids = [p.id for p in self.plugins]
        for plugin_id in ids:
            if ids.count(plugin_id) > 1:
                raise ValueError(f"plugin '{plugin_id}' is listed twice")
        return self

    def plugin(self, plugin_id: str) -> IndexPlugin | None:
        return next((p for p in self.plugins if p.id == plugin_id), None)


def parse_index(data: bytes, source: str) -> MarketIndex:
    """Parse and validate an index document; `InvalidIndex` names `source` ("index 'x' (url)") and
    every problem."""
    try:
        document = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidIndex(f"{source} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise InvalidIndex(f"{source} is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except (ValueError, RecursionError) as exc:
        raise InvalidIndex(f"{source} cannot be read: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidIndex(f"{source} must be a JSON object with a 'plugins' list")
    try:
        return MarketIndex.model_validate(document)
    except ValidationError as exc:
        problems = [_problem(e) for e in exc.errors()]
        shown = "; ".join(problems[:5]) + (f"; … {len(problems) - 5} more" if len(problems) > 5 else "")
        raise InvalidIndex(f"{source} is invalid: {shown}", detail={"problems": problems}) from None


def _problem(error: Any) -> str:
    where = ".".join(str(p) for p in error.get("loc", ()))
    kind = error.get("type")
    if kind == "extra_forbidden":
        message = "unknown field (check the spelling)"
    elif kind == "missing":
        message = "required field is missing"
    else:
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


__all__ = [
    "IndexPlugin",
    "IndexVersion",
    "MarketIndex",
    "parse_index",
    "parse_plugin_requirement",
    "parse_python_requirement",
    "parse_version",
]
