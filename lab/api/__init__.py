"""The HTTP API (`lab api`): run control, status, single jobs, live events, metrics, the admin
page. Routes are thin; the state they show belongs to `lab.runtime`.

    app.py        the application: run control, status, runs, history, SSE and WebSocket
    jobs.py       the single-jobs routes (search, delayed jobs, run-now)
    bulk.py       bulk retry, cancel and delete
    deadletters.py  list, replay and purge dead letters
    queues.py     pause, resume and purge queues; pause and resume the run's release
    admin.py      the admin page (static/admin.html)
    snapshot.py   one shared `/status` snapshot per process
    metrics.py    `GET /metrics` for Prometheus
    access.py     who may call: Host, Origin, bearer token
    limits.py     what a request may be: body size and depth, live streams
    responses.py  JSON responses and the SSE loop
"""
