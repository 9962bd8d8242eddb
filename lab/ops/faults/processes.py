"""Process faults, beside the network ones: a *frozen* process (SIGSTOP: it keeps its sockets
and the messages it holds unacked, and answers nothing, not even AMQP heartbeats, until the
broker gives up on it after about twice `LAB_AMQP_HEARTBEAT_S` and hands its messages to
another worker) and a *throttled* one (SIGSTOP and SIGCONT in a duty cycle: a slow CPU).

No fault outlives what started it. Every way out of a block sends SIGCONT: its end, an error,
and SIGINT, SIGTERM or SIGHUP to the command (`ending_on_signals` turns each into an exception,
so the block unwinds). Only `kill -9` skips that; so each process the CLI freezes or throttles is
recorded under the lab's home (`<LAB_HOME>/frozen/<pid>.json`, removed once it is thawed), and
`lab fault thaw --all` and stopping the lab (`Supervisor.down`) continue every recorded one.
A record is read back as data: a name that is not a record's, a file that is not a small
regular file, a field out of shape, or a pid now held by another process (its start time
differs) is never signalled."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import stat
import threading
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType

from lab.ops.processes import started

FOLDER = "frozen"
RECORD = re.compile(r"[1-9][0-9]{0,9}\.json")
NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MAX_RECORD_BYTES = 4096
ENDING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def freeze(pid: int) -> None:
    os.kill(pid, signal.SIGSTOP)


def thaw(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # gone meanwhile: nothing left to thaw
        os.kill(pid, signal.SIGCONT)


# --- what survives the command: one record per frozen or throttled process ---------------------
@dataclass(frozen=True)
class Record:
    pid: int
    name: str  # as `lab up` names it: worker-1, api, …
    started: int  # the process's start time (clock ticks since boot)
    how: str  # "freeze" or "throttle"


def folder(home: Path) -> Path:
    return Path(home) / FOLDER


def record(home: Path, pid: int, name: str, how: str) -> None:
    """Write the record of `pid` (whole, by a rename), before it is stopped."""
    since = started(pid)
    if since is None:
        raise ProcessLookupError(f"pid {pid} is not running")
    where = folder(home)
    where.mkdir(parents=True, exist_ok=True)
    entry = Record(pid, name if NAME.fullmatch(name) else "?", since, how)
    partial = where / f".{pid}.{os.getpid()}.tmp"
    partial.write_text(json.dumps(asdict(entry)))
    os.replace(partial, where / f"{pid}.json")


def forget(home: Path, pid: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        (folder(home) / f"{int(pid)}.json").unlink()


def read(path: Path) -> Record:
    """One record as written by `record`, or ValueError saying why it is not one."""
    if not RECORD.fullmatch(path.name):
        raise ValueError("not a record's name (<pid>.json)")
    info = path.lstat()  # a link or a FIFO is not followed, let alone read
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_RECORD_BYTES:
        raise ValueError(f"not a regular file of at most {MAX_RECORD_BYTES} bytes")
    with path.open("rb") as f:
        raw = f.read(MAX_RECORD_BYTES + 1)
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ValueError("not JSON") from None
    if not isinstance(data, dict) or set(data) != {"pid", "name", "started", "how"}:
        raise ValueError("not an object of pid, name, started, how")
    pid, name, since, how = data["pid"], data["name"], data["started"], data["how"]
    if type(pid) is not int or pid != int(path.name.removesuffix(".json")):
        raise ValueError("its pid is not the one its name says")
    if type(since) is not int or since < 0:
        raise ValueError("started is not a whole number of clock ticks")
    if not isinstance(name, str) or not (NAME.fullmatch(name) or name == "?"):
        raise ValueError("name is not a process name")
    if how not in ("freeze", "throttle"):
        raise ValueError("how is neither freeze nor throttle")
    return Record(pid, name, since, how)


def thaw_recorded(home: Path, pids: Iterable[int] | None = None) -> tuple[list[Record], list[str]]:
    """SIGCONT every recorded process (or those of `pids`) that is still the one recorded, and
    forget its record; a record of a process gone (or a pid since reused) is forgotten
    unsignalled. Returns (the records acted on, one line per file that is not a record)."""
    wanted = None if pids is None else {p for p in pids if p}
    done, problems = [], []
    where = folder(home)
    for path in sorted(where.iterdir()) if where.is_dir() else []:
        if path.name.startswith(".") and path.name.endswith(".tmp"):
            continue  # a record being written
        try:
            entry = read(path)
        except (OSError, ValueError) as exc:
            problems.append(f"{path}: {exc}; left alone")
            continue
        if wanted is not None and entry.pid not in wanted:
            continue
        if started(entry.pid) == entry.started:
            thaw(entry.pid)
        forget(home, entry.pid)
        done.append(entry)
    return done, problems


# --- faults for the length of a block -----------------------------------------------------------
class Interrupted(Exception):
    """A signal asked the command to end (SIGINT, SIGTERM or SIGHUP); its name is the message."""


_held: list[str] = []  # while a fault is being undone: "held", then the name of a signal held


@contextlib.contextmanager
def _undoing() -> Iterator[None]:
    """Undo a fault whole: a signal that comes meanwhile is raised only once it is undone."""
    _held[:] = ["held"]
    try:
        yield
    finally:
        came = _held[1:]
        _held.clear()
        if came:
            raise Interrupted(came[0])


@contextlib.contextmanager
def ending_on_signals() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP raise `Interrupted` in the block, so every `finally` in it
    runs (SIGTERM and SIGHUP would otherwise end the process on the spot). Once one came, the
    others are ignored, and one that comes while a fault is being undone waits for the end of
    that: no signal cuts a thaw short. Main thread only, as Python's signal handlers are."""

    def end(signum: int, _frame: FrameType | None) -> None:
        for each in ENDING:
            signal.signal(each, signal.SIG_IGN)
        if _held:
            _held.append(signal.Signals(signum).name)
            return
        raise Interrupted(signal.Signals(signum).name)

    previous = {each: signal.signal(each, end) for each in ENDING}
    try:
        yield
    finally:
        for each, handler in previous.items():
            signal.signal(each, handler)


@contextlib.contextmanager
def frozen(pid: int, home: Path | None = None, name: str = "") -> Iterator[None]:
    """`pid` stopped for the block, continued after it whatever happens (recorded under `home`
    meanwhile, when given)."""
    if home is not None:
        record(home, pid, name, "freeze")
    try:
        freeze(pid)
        yield
    finally:
        with _undoing():
            thaw(pid)
            if home is not None:
                forget(home, pid)


@contextlib.contextmanager
def throttled(
    pid: int, running_share: float, period_s: float = 0.1, home: Path | None = None,
    name: str = "",
) -> Iterator[None]:  # fmt: skip
    """`pid` runs `running_share` of each `period_s` for the block (a CPU that slow), and
    runs freely after it (recorded under `home` meanwhile, when given)."""
    if not 0 < running_share < 1:
        raise ValueError(f"the running share must be between 0 and 1, got {running_share!r}")
    done = threading.Event()
    turn = threading.Lock()  # the last thaw comes after the cycle's last freeze

    def cycle() -> None:
        while not done.is_set():
            thaw(pid)
            done.wait(period_s * running_share)
            with turn:
                if done.is_set():
                    break
                try:
                    freeze(pid)
                except ProcessLookupError:
                    return
            done.wait(period_s * (1 - running_share))

    if home is not None:
        record(home, pid, name, "throttle")
    worker = threading.Thread(target=cycle, name=f"throttle-{pid}", daemon=True)
    try:
        worker.start()
        yield
    finally:
        with _undoing():
            with turn:
                done.set()
            thaw(pid)
            worker.join(5)
            if home is not None:
                forget(home, pid)
