"""Work done beside a trial's run, on a thread of its own: a load offered to the API, a fault a
drill injects. One mechanism, so each says what went wrong the same way."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class Alongside:
    """`work()` on a thread from now on; `result()` waits for its figures. What it raises
    becomes `{error_key: "Type: message"}`, so a trial's row says what went wrong instead of
    losing the run's own figures."""

    def __init__(self, name: str, work: Callable[[], dict[str, Any]], error_key: str = "error"):
        self.figures: dict[str, Any] = {}

        def run() -> None:
            try:
                self.figures = work()
            except Exception as exc:  # noqa: BLE001 - the row says what went wrong
                self.figures = {error_key: f"{type(exc).__name__}: {exc}"[:300]}

        self.thread = threading.Thread(target=run, name=name, daemon=True)
        self.thread.start()

    def result(self) -> dict[str, Any]:
        self.thread.join()
        return self.figures
