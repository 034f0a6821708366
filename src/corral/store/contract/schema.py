"""The schema part of the store contract: migrations, the check at open, the store's clock and
its end."""

from __future__ import annotations

from typing import Protocol

from ...clock import Clock


class SchemaStore(Protocol):
    url: str
    replies_may_be_lost: bool
    """A call's reply may be lost after it committed (a network lies between the client and the
    server: PostgreSQL), and the store then runs the call again: a submit needs an id of its own
    (corral.submit_ids) even when the caller gave none. SQLite's calls return in-process: a
    failed commit is a definite one."""

    def migrate(self) -> list[int]:
        """Apply the numbered migrations not yet applied; return their numbers."""
        ...

    def check_schema(self) -> None:
        """Raise DatabaseError, saying to run `corral migrate`, if the schema is missing or old."""
        ...

    def schema_version(self) -> int:
        """The number of the last migration applied (0: none)."""
        ...

    def close(self) -> None:
        """Release connections. The store may not be used afterwards."""
        ...

    def clock(self) -> Clock:
        """The clock every process on this store takes `now` from (one source): the host's on
        SQLite, the database server's on PostgreSQL."""
        ...
