"""Paused groups, in the store contract: an operator's hold on a group's admissions.

A paused group keeps its ready tasks ready: the scheduler admits none of them (corral.admission
reads the paused set with the load of every round), and what already runs, or was admitted,
finishes. Resuming wakes the scheduler. The store decides nothing else: who may pause comes from
the faces (the CLI, corral web's operator role)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class PausedGroup:
    name: str
    paused_at: float
    paused_by: str
    """Who paused it: a CLI user (`cli:<user>`) or a web token's name (`web:<name>`)."""
    reason: str | None


class GroupPauses(Protocol):
    def group_pause(self, pause: PausedGroup) -> bool:
        """Pause a group (it need not be configured, nor have tasks); False if it was paused
        already (the first pause's time, author and reason stay)."""
        ...

    def group_resume(self, name: str) -> bool:
        """Resume a paused group and wake the scheduler; False if it was not paused."""
        ...

    def group_paused_list(self) -> list[PausedGroup]:
        """Every paused group, by name (an operator's handful)."""
        ...
