"""What the routes need, handed to them as a FastAPI dependency: one `Services` per API
process, made by `create_app` and kept on `app.state`. A route names it (`lab: Lab`) and reads
what it needs, so routers are plain modules and a test can build an app with other services.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from lab.api.health import Health
from lab.api.limits import StreamSlots
from lab.config import Settings
from lab.runtime.broker import Publisher
from lab.runtime.deadletters import DeadLetters
from lab.runtime.jobs import JobRecords
from lab.runtime.search import RecordSearch
from lab.runtime.store import Store
from lab.runtime.stores import Stores
from lab.targets.bullmq_jobs import SingleJobs


@dataclass
class Services:
    settings: Settings
    stores: Stores
    records: JobRecords
    publisher: Publisher
    store: Store
    search: RecordSearch
    dead: DeadLetters
    slots: StreamSlots
    health: Health
    # Called after this process changed a run or a pause, so its next /status shows it at once.
    changed: Callable[[], None] = lambda: None
    bulk_running: threading.Lock = field(default_factory=threading.Lock)  # one bulk at a time
    bullmq: SingleJobs | None = None  # single jobs on BullMQ (lab/api/targeted.py), when used
    wake_relay: Callable[[], None] = lambda: None  # a job went to BullMQ: relay its events now


def services(connection: HTTPConnection) -> Services:
    found: Services = connection.app.state.services
    return found


Lab = Annotated[Services, Depends(services)]
