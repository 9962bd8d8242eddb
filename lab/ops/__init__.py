"""What starts, stops and cleans up a lab.

stack.py       `lab stack`: reuses the services that answer, starts the rest
servers.py     each service started locally on a free port (Redis, RabbitMQ nodes and clusters,
               the Elasticsearch-API server, Prometheus), and whether one answers
supervisor.py  the one supervisor of api, scheduler and worker processes (`lab up`, notebooks,
               drills, tests)
processes.py   liveness by pid, and SIGTERM then SIGKILL
reset.py       removes one lab namespace's keys, queues and index
logs.py        logging set-up and rotation
"""
