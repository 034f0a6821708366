"""Group scopes: the groups a caller may see and touch (a scoped API token's, corral.web).
A scope is a tuple of entries, each a group name or a prefix ending in '*' ("client-7/*" sees
"client-7/loads" and "client-7/checks", not "client-70"); the empty scope sees every group.
Pure rules: the store applies the same ones in SQL (`sql_params`)."""

from __future__ import annotations

from collections.abc import Sequence

from . import limits
from .errors import ConfigError

MAX_ENTRIES = 100


def check_entry(entry: str) -> str:
    """A scope's entry, checked: a group name, or a prefix ending in its only '*'."""
    limits.text("scope", entry)
    if not entry or entry == "*" or "*" in entry[:-1]:
        raise ConfigError(
            f"scope: {entry!r} is not a group name or a prefix ending in '*' (e.g. 'client-7/*')"
        )
    return entry


def check(scope: Sequence[str]) -> tuple[str, ...]:
    if len(scope) > MAX_ENTRIES:
        raise ConfigError(f"scope: at most {MAX_ENTRIES} entries, got {len(scope)}")
    return tuple(dict.fromkeys(check_entry(e) for e in scope))


def sees(scope: Sequence[str], group: str) -> bool:
    """Whether a caller of this scope sees the group."""
    if not scope:
        return True
    return any(group.startswith(e[:-1]) if e.endswith("*") else group == e for e in scope)


def sql_params(scope: Sequence[str]) -> tuple[bool, list[str], list[str]]:
    """A scope as the store's SQL takes it: (every group, the names, the prefixes)."""
    names = [e for e in scope if not e.endswith("*")]
    prefixes = [e[:-1] for e in scope if e.endswith("*")]
    return not scope, names, prefixes
