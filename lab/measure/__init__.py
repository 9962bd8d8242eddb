"""What measures a lab: benchmarks, load tests, drills and the reports made of them.

bench*.py      `lab bench`: throughput, release accuracy, live jobs, the panel's lag, /status
cpu.py         where the CPU went during a measurement: steal, idle, each process's share
loadtest.py    Locust, headless or distributed (`lab loadtest`)
hostile.py     hostile requests and poison messages, for tests and the hostile drill
drill.py       helpers the drill notebooks share
reports/       `lab report`: drill notebooks run as reports, indexed and compared
"""
