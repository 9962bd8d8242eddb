"""Process logs rotate, and what a process prints follows the log to its new file."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


def test_a_process_log_rotates_and_carries_stdout(tmp_path: Path) -> None:
    log = tmp_path / "worker-1.log"
    program = textwrap.dedent(
        f"""
        import logging
        from lab.ops import logs
        logs.configure(log_file={str(log)!r}, max_bytes=4000)
        for n in range(200):
            logging.getLogger("lab.test").info("line %d %s", n, "x" * 40)
        print("printed after rotating", flush=True)
        raise SystemExit("a crash's last words")
        """
    )
    subprocess.run([sys.executable, "-c", program], capture_output=True, timeout=60)
    older = log.with_name("worker-1.log.1")
    assert older.exists() and log.stat().st_size <= 4000 and older.stat().st_size <= 4000
    text = log.read_text()
    assert "line 199" in text and "printed after rotating" in text
    assert "a crash's last words" in text
    assert not log.with_name("worker-1.log.2").exists()
