"""What starts, stops and cleans up a lab.

stack.py       makes Redis, RabbitMQ and an Elasticsearch API reachable (`lab stack`)
supervisor.py  the one supervisor of api, scheduler and worker processes (`lab up`, notebooks,
               drills, tests)
reset.py       removes one lab namespace's keys, queues and index
logs.py        logging set-up and rotation
"""
