"""Today's Python task queues doing lab's reference job, for `lab bench throughput --peers`.

The same durable work as a lab worker: durable queue, persistent message, publisher confirms,
an Elasticsearch upsert by id, the same exact Redis count (lab's bitmap script), ack only after
the write (Celery `acks_late`; Dramatiq always acks after the actor returns). Each peer pays, as
it does in ordinary use, one broker round trip and one Elasticsearch request per job.

Celery and Dramatiq are an optional extra (`pip install -e '.[bench]'`), never imported by lab
itself.
"""
