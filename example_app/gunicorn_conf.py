"""gunicorn settings for the example app.

    gunicorn -c example_app/gunicorn_conf.py

``DATABASE_URL`` points every worker at the same database, ``BIND`` sets the
address and ``WEB_CONCURRENCY`` the number of worker processes.
"""

import os

wsgi_app = "example_app:create_app()"
bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
# Build the app once, in the master, before the workers are forked:
# create_app() creates the tables once and closes its connections, and every
# worker shares its settings (a random SECRET_KEY included, when none is set).
preload_app = True
# A webhook sender waits for its answer; do not let a stuck request hold a worker forever.
timeout = 30
accesslog = "-"
