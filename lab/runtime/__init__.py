"""What runs a pipeline, and nothing else: the job message, the Redis keys and state, the
Elasticsearch store, the RabbitMQ topology, and the three loops that use them.

    messages.py   the job message and `parse()`, which turns any body into a job or a named error
    keys.py       every Redis key name (the Lua scripts in lua/ get them as KEYS)
    stores/       a lab's state in Redis, one store per feature (runs, counting, release,
                  pauses, heartbeats, objectives, head ages, retention, overview)
    jobs.py       single jobs' records in Redis
    progress.py   what a running job's handler reports through `ctx` (pure)
    delayed.py    delayed single jobs: their messages wait in Redis until their time
    search.py     the records index that `GET /jobs?q=` searches, and its indexer
    deadletters.py  the dead-letter queue, read and replayed without losing a letter
    store.py      Elasticsearch: one document per job, `_id` = jobId
    broker.py     RabbitMQ: the queues, retry ladder and dead letters; connecting and publishing
    retry.py      what a failure becomes (retry after a delay, or a dead letter)
    batch.py      the worker's pure decisions about one batch
    worker.py     the worker loop: receive, run handlers, write, count, ack
    scheduler.py  releases the active run at Y jobs a minute
    handlers.py   finds a job kind's handler in `workers/`
    events.py     the lab's event stream (Redis Stream) and its readers
    history.py    counts by time: a run's timeline and the last hour
    backoff.py    jittered backoff for reconnecting and waiting out outages
"""
