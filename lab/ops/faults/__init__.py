"""The fault proxy: Toxiproxy's model and HTTP API in one `lab` process, so partial failures
(latency, bandwidth, resets, silence) can be put between `lab` and its services on a machine
with no `netem` and no Toxiproxy package, and the same calls drive a real Toxiproxy where one runs.

toxics.py   what a toxic is: its hooks on the byte stream, the registry `TOXICS`, parsing
kinds.py    Toxiproxy's toxics, one class each (a new toxic is one class there)
fields.py   names and addresses: what the API accepts, and what a client reads back
proxy.py    one TCP proxy: its listener, its links (client ↔ upstream) and the toxics on them
api.py      the HTTP API, with Toxiproxy 2.x's routes, JSON shapes and errors
client.py   a client of that API (ours or Toxiproxy's), for `lab fault` and the drills
"""

# Registers Toxiproxy's toxics in `toxics.TOXICS` whatever module of the package is used first.
from lab.ops.faults import kinds as kinds
