"""Progress bars (rich) with counts, rate and ETA; silent when disabled or not a terminal."""

from __future__ import annotations

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress


class Progress:
    """A thin wrapper so library code can report progress without caring whether it is shown."""

    def __init__(self, enabled: bool = True):
        self._rich: RichProgress | None = None
        if enabled:
            self._rich = RichProgress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                transient=False,
            )
        self._open = 0

    def task(self, description: str, total: int | None, completed: int = 0) -> TaskID | None:
        if self._rich is None:
            return None
        if self._open == 0:
            self._rich.start()
        self._open += 1
        return self._rich.add_task(description, total=total, completed=completed)

    def advance(self, task: TaskID | None, n: int = 1) -> None:
        if self._rich is not None and task is not None:
            self._rich.advance(task, n)

    def update(self, task: TaskID | None, completed: int, total: int | None = None) -> None:
        if self._rich is not None and task is not None:
            self._rich.update(task, completed=completed, total=total)

    def done(self, task: TaskID | None) -> None:
        if self._rich is None or task is None:
            return
        self._open -= 1
        if self._open == 0:
            self._rich.stop()
