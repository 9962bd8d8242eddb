"""The fault proxy's boundaries, pure: names and addresses as the API takes them and as clients
read them back, shell lines that `eval` cannot be made to run, the JSON-only door, toxics that
refuse what is not theirs, and process-fault records read back as data."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from rich.console import Console

from lab.addresses import host_port
from lab.cli.stack import export_lines
from lab.cli.terminal import DataTable, shown
from lab.gate import media_refusal
from lab.ops.faults import fields, processes, toxics
from lab.ops.faults.fields import FaultError

HOSTILE = [
    "$(touch pwned)", "`touch pwned`", "a; touch pwned", "a' ; touch pwned; '", 'a" ; touch pwned',
    "a\ntouch pwned", "\\$(touch pwned)", "${IFS}touch${IFS}pwned", "a|touch pwned",
    "a&&touch pwned", "", "'", '"', "\\", "!!", "*", "~", "#x", "é ²٣", "a\tb",
]  # fmt: skip


@pytest.mark.parametrize(
    "text", ["0.0.0.0:1", "[::]:1", "10.0.0.1:1", "example.com:1", "$(touch pwned):1",
             "127.0.0.1:\u00b2", "127.0.0.1:\u0663", "127.0.0.1:65536", "127.0.0.1:", ":1",
             "127.0.0.1:1\n", "127.0.0.1", "[::1]1", 5, None, ["127.0.0.1:1"]],
)  # fmt: skip
def test_a_proxy_listens_only_on_loopback_at_an_ascii_port(text: object) -> None:
    with pytest.raises(FaultError) as refused:
        fields.listen(text)
    assert refused.value.status == 400 and refused.value.field == "listen"


def test_addresses_that_are_fine_are_kept_and_ipv6_is_bracketed() -> None:
    assert fields.listen("127.0.0.1:0") == "127.0.0.1:0"
    assert fields.listen("localhost:17379") == "localhost:17379"
    assert fields.listen("[::1]:80") == "[::1]:80" and fields.listen("127.3.4.5:1") == "127.3.4.5:1"
    assert fields.upstream("redis:6379") == "redis:6379"  # a compose service name
    assert host_port("[::1]:80") == ("::1", 80)
    for bad in ("a:²", "a:٣", "a b:1", "$(x):1", "a:1\n", "[zz]:1", "a:99999"):
        with pytest.raises(ValueError, match="is not host:port"):
            host_port(bad)
    with pytest.raises(FaultError, match="port 0"):
        fields.upstream("127.0.0.1:0")


@pytest.mark.parametrize("name", ["a/b", "", "x" * 65, "a b", "[/]", "<b>", "a\n", 5, ["a"]])
def test_names_are_a_path_segment_and_nothing_more(name: object) -> None:
    with pytest.raises(FaultError, match="name"):
        fields.name(name)
    with pytest.raises(FaultError, match="name") as refused:
        toxics.parse({"type": "latency", "name": name or "a/b"})
    assert refused.value.as_json()["status"] == 400


@pytest.mark.parametrize(
    ("body", "field"),
    [({"type": ["latency"]}, "type"), ({"type": "latency", "stream": ["up"]}, "stream"),
     ({"type": "latency", "toxicity": 10**400}, "toxicity"),
     ({"type": "latency", "toxicity": float("nan")}, "toxicity"),
     ({"type": "latency", "attributes": {"latency": 10**400}}, "attributes.latency"),
     ({"type": "latency", "attributes": {"latency": float("inf")}}, "attributes.latency"),
     ({"type": "latency", "attributes": {"latency": "1"}}, "attributes.latency")],
)  # fmt: skip
def test_every_malformed_toxic_is_a_400_naming_its_field(body: dict, field: str) -> None:
    with pytest.raises(FaultError) as refused:
        toxics.parse(body)
    assert refused.value.as_json() == {"error": refused.value.message, "status": 400,
                                       "fields": [field]}  # fmt: skip


def test_a_proxy_body_is_checked_whole() -> None:
    assert fields.proxy({"name": "r", "upstream": "127.0.0.1:6379"}) == {
        "name": "r", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:6379", "enabled": True,
    }  # fmt: skip
    for body, message in [
        ({"name": "r"}, "missing required field: upstream"),
        ({"name": "r", "upstream": "h:1", "enabled": "yes"}, "enabled must be true or false"),
        ({"name": "r", "upstream": "h:1", "enabled": False, "listen": "$(touch pwned):1"},
         "listen"),
        ([], "expected a JSON object"),
    ]:  # fmt: skip
        with pytest.raises(FaultError, match=message):
            fields.proxy(body)
    assert fields.change({"enabled": False}) == {"enabled": False}
    with pytest.raises(FaultError, match="listen"):
        fields.change({"enabled": False, "listen": "0.0.0.0:1"})


def test_addresses_read_back_from_a_server_are_host_port_or_refused() -> None:
    good = {"r": {"name": "r", "listen": "0.0.0.0:17379", "upstream": "redis:6379", "toxics": []}}
    assert fields.read_back(good) == good  # a real Toxiproxy in a container listens on 0.0.0.0
    for listen in ("$(touch pwned):1", "127.0.0.1:1;id", "127.0.0.1:²", 5, None):
        with pytest.raises(ValueError, match="listen"):
            fields.read_back({"r": {**good["r"], "listen": listen}})
    for found in ([], {"r": "x"}, {"r": {**good["r"], "toxics": "x"}}):
        with pytest.raises(ValueError):
            fields.read_back(found)


def test_every_value_exported_for_a_shell_is_set_as_it_is_and_runs_nothing(
    tmp_path: Path,
) -> None:
    values = {f"LAB_V{i}": text for i, text in enumerate(HOSTILE)}
    values["LAB_REDIS_URL"] = "redis://$(touch pwned):1/0"
    lines = export_lines(values)
    assert all(line.startswith("export LAB_") for line in lines)
    script = "\n".join(lines) + '\nfor n in "$@"; do printf "%s\\0" "${!n}"; done\n'
    shown_back = subprocess.run(["bash", "-c", script, "bash", *values], cwd=tmp_path,
                                capture_output=True, check=True, timeout=30)  # fmt: skip
    assert shown_back.stdout.decode().split("\0")[:-1] == list(values.values())
    assert list(tmp_path.iterdir()) == []  # nothing ran: no file was made
    exported = subprocess.run(["bash", "-c", "\n".join(lines) + "\nenv"], cwd=tmp_path,
                              capture_output=True, text=True, check=True, timeout=30)  # fmt: skip
    assert "LAB_REDIS_URL=redis://$(touch pwned):1/0" in exported.stdout  # exported, for lab up
    with pytest.raises(ValueError, match="shell variable"):
        export_lines({"LAB_X;touch pwned": "1"})


def test_the_json_only_door_reads_headers_alone() -> None:
    json_type = {b"content-type": b"application/json; charset=utf-8", b"content-length": b"9"}
    assert media_refusal(json_type) is None
    assert media_refusal({}) is None  # no body, no type: POST /reset
    assert media_refusal({b"content-length": b"0"}) is None
    for headers in ({b"content-type": b"text/plain", b"content-length": b"2"},
                    {b"content-type": b"text/plain"},
                    {b"content-length": b"2"},
                    {b"transfer-encoding": b"chunked"},
                    {b"content-type": b"application/x-www-form-urlencoded"}):  # fmt: skip
        assert "application/json" in (media_refusal(headers) or ""), headers


def test_markup_in_names_prints_as_itself() -> None:
    console = Console(record=True, width=200)
    table = DataTable(title=shown("fault proxies"))
    table.add_column("proxy")
    table.add_row("[/]")
    table.add_row(toxics.describe({"name": "[bold]x[/bold]", "attributes": {"a": 1}}))
    console.print(table)
    console.print(f"lab: {shown('[/]')} healed", highlight=False)
    text = console.export_text()
    assert "[/]" in text and "[bold]x[/bold]" in text
    assert toxics.describe({"name": 5, "toxicity": "x", "attributes": []}) == "5 ()"
    assert toxics.describe("not a toxic") == "?"


def test_a_record_read_back_is_data(tmp_path: Path) -> None:
    folder = processes.folder(tmp_path)
    processes.record(tmp_path, os.getpid(), "worker-1", "freeze")
    (entry,) = (processes.read(p) for p in folder.iterdir())
    assert entry.pid == os.getpid() and entry.name == "worker-1" and entry.how == "freeze"
    stale = {"pid": 4_000_000, "name": "worker-2", "started": 1, "how": "freeze"}
    (folder / "4000000.json").write_text(json.dumps(stale))
    bad = {
        "123.json": json.dumps({**stale, "pid": 124}),  # its pid is not its name's
        "125.json": json.dumps({**stale, "pid": 125, "how": "rm -rf"}),
        "126.json": json.dumps({**stale, "pid": 126, "started": "1"}),
        "127.json": "x" * 5000,
        "128.json": "[1]",
        "notes.txt": "{}",
    }
    for name, text in bad.items():
        (folder / name).write_text(text)
    (folder / "129.json").symlink_to("/dev/zero")
    os.mkfifo(folder / "130.json")  # never opened: it would block the reader
    for name in [*bad, "129.json", "130.json"]:
        with pytest.raises(ValueError):
            processes.read(folder / name)
    done, problems = processes.thaw_recorded(tmp_path, pids=[4_000_000])
    assert [r.pid for r in done] == [4_000_000]  # gone: forgotten, not signalled
    assert len(problems) == len(bad) + 2
    done, _ = processes.thaw_recorded(tmp_path)
    assert [r.pid for r in done] == [os.getpid()]  # still this process: continued (a no-op)
    assert sorted(p.name for p in folder.iterdir()) == sorted([*bad, "129.json", "130.json"])
