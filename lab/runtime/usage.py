"""What this process uses: CPU seconds and resident memory, carried by its heartbeat."""

from __future__ import annotations

import os
import resource
from pathlib import Path


def process_usage() -> dict[str, float | int]:
    """This process's CPU seconds and resident memory, carried by its heartbeat so `/metrics`
    reports every worker and scheduler without scraping each of them."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        rss = pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        rss = usage.ru_maxrss * 1024  # the peak, where /proc is missing
    return {"cpuSeconds": round(usage.ru_utime + usage.ru_stime, 3), "rssBytes": rss}
