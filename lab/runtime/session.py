"""A worker's session: one AMQP connection, its channel, the deliveries it handed out and their
acks.

Delivery tags mean something only on their own channel, so when the connection is lost the
session is dropped whole; work still running for it finishes but is never acked (the broker
delivers those messages again, and redelivery is harmless).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lab.runtime import messages
from lab.runtime.acks import AckTracker
from lab.runtime.batch import Delivery
from lab.runtime.seams import Connection


@dataclass
class Session:
    """What one connection holds; the worker's loop (`lab.runtime.worker`) drives it."""

    connection: Connection  # a pika.BlockingConnection, or lab.testing's stub
    channel: Any
    buffer: list[Delivery] = field(default_factory=list)
    acks: AckTracker = field(default_factory=AckTracker)
    in_flight: int = 0
    running_jobs: int = 0
    consumers: dict[str, str] = field(default_factory=dict)  # queue → consumer tag


def waiting_since(session: Session | None) -> int:
    """When the oldest delivery this worker holds and has not started was released (epoch ms,
    0: none), for the head-of-line age (`lab.runtime.headage`). Read from the heartbeat's
    thread: the buffer is only appended to or replaced, so its first item, once seen, stays."""
    buffer = session.buffer if session else []
    if not buffer:
        return 0
    try:
        return messages.parse(buffer[0].body).released_at
    except (IndexError, messages.MalformedMessage):
        return 0  # a malformed message is dead-lettered when it is handled
