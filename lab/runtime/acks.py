"""Which deliveries may be acked and which publishes are confirmed: the bookkeeping of both
ends of RabbitMQ's acknowledgements, pure and unit-tested (the worker acks, the scheduler counts
confirms)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class ConfirmTracker:
    """Which published seqs the broker has not confirmed yet (pure, unit-tested).

    Publisher confirms arrive per delivery tag, possibly `multiple` at once. The scheduler may
    count a job as released only when it and every job before it are confirmed, so the
    "frontier" is the lowest unconfirmed seq; a nack hands its seqs back for republishing.
    """

    pending: dict[int, int] = field(default_factory=dict)  # delivery tag → seq
    next_tag: int = 1

    def published(self, seq: int) -> int:
        tag = self.next_tag
        self.pending[tag] = seq
        self.next_tag += 1
        return tag

    def _settle(self, tag: int, multiple: bool) -> list[int]:
        if not multiple:
            seq = self.pending.pop(tag, None)
            return [] if seq is None else [seq]
        settled = [t for t in self.pending if t <= tag]
        return [self.pending.pop(t) for t in settled]

    def acked(self, tag: int, multiple: bool) -> None:
        self._settle(tag, multiple)

    def nacked(self, tag: int, multiple: bool) -> list[int]:
        """The seqs the broker refused; they must be published again."""
        return self._settle(tag, multiple)

    @property
    def outstanding(self) -> int:
        return len(self.pending)

    def frontier(self, next_seq: int, republish: Iterable[int] = ()) -> int:
        """Every seq below this one is confirmed."""
        return min([*self.pending.values(), *republish], default=next_seq)

    def forget(self) -> None:
        """Another run is followed on the same channel: what the last one left unconfirmed is no
        longer this tracker's to count. Tags go on from where they are, as the channel's do; a
        tracker that started again at 1 would pair the broker's confirms with the wrong seqs,
        count unconfirmed jobs as released and wait forever for the last one."""
        self.pending.clear()

    def reset(self) -> list[int]:
        """A new channel starts tags at 1; what was pending is unknown and must be republished."""
        lost = sorted(self.pending.values())
        self.pending.clear()
        self.next_tag = 1
        return lost


@dataclass
class AckTracker:
    """Which deliveries may be acked, and how (pure, unit-tested).

    Batches finish out of order once several are in flight (and a long per-message job can hold
    a low delivery tag for seconds), so `multiple=True` is safe only up to the first delivery
    that is still in work; finished ones beyond it are acked one by one, so they stop counting
    against the prefetch window.
    """

    outstanding: list[int] = field(default_factory=list)  # delivery tags in delivery order
    finished: set[int] = field(default_factory=set)

    def delivered(self, tag: int) -> None:
        self.outstanding.append(tag)

    def finish(self, tags: Iterable[int]) -> tuple[int | None, list[int]]:
        """Mark `tags` done; returns (ack multiple up to this tag or None, tags to ack singly)."""
        self.finished.update(tags)
        prefix = 0
        while prefix < len(self.outstanding) and self.outstanding[prefix] in self.finished:
            prefix += 1
        upto = self.outstanding[prefix - 1] if prefix else None
        for tag in self.outstanding[:prefix]:
            self.finished.discard(tag)
        self.outstanding = self.outstanding[prefix:]
        singles = [t for t in self.outstanding if t in self.finished]
        if singles:
            self.outstanding = [t for t in self.outstanding if t not in self.finished]
            self.finished.difference_update(singles)
        return upto, singles

    def settle(self, tags: Iterable[int]) -> None:
        """Forget deliveries settled another way (nacked back to their queue): acking one of
        them again would close the channel."""
        gone = set(tags)
        self.outstanding = [t for t in self.outstanding if t not in gone]
        self.finished.difference_update(gone)

    @property
    def in_work(self) -> int:
        return len(self.outstanding)
