"""gunicorn settings for the reference host, sized for the live feed (docs/live-feed.md).

    gunicorn -c host_example/gunicorn.conf.py 'host_example:create_app()'

Each open SSE or WebSocket stream holds one thread of its worker, so every worker gets
threads for its stream cap (OMNI_DASHBOARD_STREAM_MAX_CLIENTS, which answers 503 beyond it)
plus OMNI_HTTP_THREADS for ordinary requests. A client that makes no progress is hung up on
after OMNI_DASHBOARD_STREAM_SEND_TIMEOUT seconds, so it cannot keep its thread; a worker told
to stop ends its streams at once (end_streams_on_term below).
"""

import gc
import os
import signal

bind = os.environ.get("OMNI_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("OMNI_DASHBOARD_STREAM_MAX_CLIENTS", "200")) + int(
    os.environ.get("OMNI_HTTP_THREADS", "16")
)
keepalive = 5
accesslog = "-"  # to stdout, API keys redacted:
logger_class = "host_example.gunicorn_logging.RedactingLogger"
graceful_timeout = 5  # open streams end at shutdown; clients reconnect and resume
# gunicorn answers a request over these limits itself, in HTML: they sit above the app's own
# (OMNI_MAX_URL_LENGTH 8000 and OMNI_MAX_HEADER_BYTES 16384), which answer with the envelope.
limit_request_line = 8190  # gunicorn's largest: a target of 8000 and any method fit
limit_request_field_size = 32768  # one header line twice the app's limit for all of them
limit_request_fields = 100  # gunicorn's default; more header lines get its own 431


def on_starting(server):
    """Start prometheus_client's multiprocess mode afresh (docs/prometheus.md)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        os.makedirs(directory, exist_ok=True)
        for name in os.listdir(directory):
            if name.endswith(".db"):
                os.remove(os.path.join(directory, name))


def child_exit(server, worker):
    """A dead worker's live gauges (stream clients, NATS) leave the totals with it."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):
    """Move what loading the app allocated (modules, the app, its schemas) out of the
    collector's way: a full collection then walks only what requests build (the plugin's
    statements among it), not the whole heap (docs/host-integration.md#worker-processes).
    Collected first, so that no garbage is frozen with it. And end the live streams when
    the worker is told to stop."""
    gc.collect()
    gc.freeze()
    end_streams_on_term(worker)


def end_streams_on_term(worker):
    """A graceful stop or reload (SIGTERM to the worker; ``kill -HUP`` on the master sends it
    to the old workers) ends the worker's open streams at once, cleanly (an SSE body's last
    chunk, a WebSocket's close 1001), before gunicorn's own handler starts waiting for
    requests to finish: otherwise the streams would hold the worker past graceful_timeout
    until it is killed. Clients reconnect to the workers that stay and resume from their
    last id (docs/live-feed.md)."""
    dashboard = getattr(worker.wsgi, "extensions", {}).get("omni_dashboard")
    if dashboard is None:
        return
    stop_gracefully = signal.getsignal(signal.SIGTERM)

    def on_term(signum, frame):
        dashboard.live.end_streams()
        stop_gracefully(signum, frame)

    signal.signal(signal.SIGTERM, on_term)
