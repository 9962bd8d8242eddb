"""A loop on a daemon thread of its own, for the API's background work (the records indexer,
the delayed-job releaser): it calls `step()` until stopped, and an error (a service away for a
while, or a bug, which is logged) is waited out with backoff, never the end of the loop."""

from __future__ import annotations

import logging
import threading

from lab.runtime.backoff import Backoff


class BackgroundLoop:
    name = "background"

    def __init__(self) -> None:
        self.stopping = threading.Event()

    def start(self) -> BackgroundLoop:
        threading.Thread(target=self.run, name=self.name, daemon=True).start()
        return self

    def stop(self) -> None:
        self.stopping.set()

    def prepare(self) -> None:
        """Run once before the steps, and again after an error."""

    def step(self) -> None:
        raise NotImplementedError

    def failed(self, exc: Exception) -> None:
        logging.getLogger(f"lab.runtime.{self.name}").warning("%s: %r", self.name, exc)

    def run(self) -> None:
        wait = Backoff(initial_s=0.5, cap_s=10.0)
        while not self.stopping.is_set():
            try:
                self.prepare()
                while not self.stopping.is_set():
                    self.step()
                    wait.reset()
            except Exception as exc:  # noqa: BLE001 - waited out, never the end of the loop
                self.failed(exc)
                self.stopping.wait(wait.next())
