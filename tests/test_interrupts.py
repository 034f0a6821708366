"""corral.interrupts on its own: an interrupt waits while its thread is shielded and is raised as
it leaves; one that came before the thread started is raised at the start; one that already
landed is never delivered again; a closed target takes none. (The stores and the executors using
it are tested on both backends in tests/test_interrupt_deferral.py.)"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from corral.errors import TaskTimeout
from corral.interrupts import Target, shielded


def in_thread(
    body: Callable[[Target, list[str]], None],
) -> tuple[Target, list[str], threading.Thread]:
    """Run `body(target, notes)` in a thread bound to a fresh target."""
    target, notes = Target(), []
    started = threading.Event()

    def main() -> None:
        try:
            target.bind()
            started.set()
            body(target, notes)
        except TaskTimeout:
            notes.append("interrupted")
        finally:
            target.close()
            started.set()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    assert started.wait(10)
    return target, notes, thread


def test_an_interrupt_waits_for_the_shield_and_lands_as_the_thread_leaves() -> None:
    inside = threading.Event()

    def body(target: Target, notes: list[str]) -> None:
        with shielded():
            inside.set()
            time.sleep(0.3)  # interrupted meanwhile
            notes.append("finished corral's call")
        notes.append("back in the handler")  # never: the interrupt lands before

    target, notes, thread = in_thread(body)
    assert inside.wait(10)
    assert target.interrupt(TaskTimeout)
    thread.join(10)
    assert notes == ["finished corral's call", "interrupted"]
    assert not target.interrupt(TaskTimeout)  # closed


def test_an_interrupt_that_landed_is_not_raised_again_by_a_later_shield() -> None:
    def body(target: Target, notes: list[str]) -> None:
        try:
            while True:  # the handler's own code: the interrupt lands here
                pass
        except TaskTimeout:
            notes.append("landed")
        with shielded():  # e.g. a checkpoint saved while cleaning up
            notes.append("saved")
        notes.append("done")

    target, notes, thread = in_thread(body)
    time.sleep(0.05)
    assert target.interrupt(TaskTimeout)
    thread.join(10)
    assert notes == ["landed", "saved", "done"]


def test_an_interrupt_before_the_thread_starts_is_raised_at_its_start() -> None:
    target, notes = Target(), []
    assert target.interrupt(TaskTimeout)

    def main() -> None:
        try:
            target.bind()
            notes.append("ran")
        except TaskTimeout:
            notes.append("interrupted")
        finally:
            target.close()

    thread = threading.Thread(target=main)
    thread.start()
    thread.join(10)
    assert notes == ["interrupted"]
