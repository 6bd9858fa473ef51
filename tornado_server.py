"""One Tornado process: native handlers on the event loop, Flask on a thread pool.

    python tornado_server.py --port 8001

Paths listed by ``async_handlers.native_routes`` go to native handlers (but a
``multipart/form-data`` request to a path of ``native_endpoints.FLASK_UPLOAD_PATHS``,
an upload, goes to Flask, which declares that endpoint); every other path goes
to the Flask app (routed by ``tornado_dispatch.PathDispatch``, one request
object per WSGI request, query and body left to Flask) through a WSGI container
(``async_handlers.wsgi_container``) whose whole WSGI call is one job on a
``ThreadPoolExecutor``, so the event loop stays free while Flask works. The
native handlers' own blocking calls (database, sync Redis) run on a second,
smaller pool (``NATIVE_THREADS``), so long-polls and nearby queries never queue
behind slow Flask requests. Once listening, the process starts its one chat
wake-up listener (``async_handlers.start_native_services``).

On SIGTERM (supervisord's stop signal) the process drains without failing a
request (docs/operations.md):

1. it stops listening (new connects are refused; nginx sends them elsewhere) and
   turns keep-alive off, so every request read from now on is answered with
   ``Connection: close``;
2. the shutdown hooks answer the waiting long-polls at once;
3. requests still arriving on open connections (nginx's idle keep-alive
   connections) are served when they are Flask's, and refused by closing the
   connection unanswered when they are native (polls, nearby: GETs, which
   nginx retries on another process as an upstream ``error``), until every
   connection has closed (nginx closes idle upstream connections after its
   ``keepalive_timeout``) or ``SHUTDOWN_DRAIN_SECS`` has passed; a native POST
   (a chat send, which nginx may not resend) is served like Flask's;
4. only then are the worker pools shut down (after their last job) and Redis
   closed. Invariant: no job is ever submitted to a pool that is shut down.

The socket listens with a backlog near ``net.core.somaxconn`` (Tornado's
default is 128), so a burst of reconnecting polls is not refused by the kernel.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import re
import signal
import sys
import time
from typing import Any, cast

import tornado.web
import uvloop
from flask import Flask
from tornado import httputil
from tornado.http1connection import HTTP1Connection
from tornado.httpserver import HTTPServer
from tornado.ioloop import PeriodicCallback
from tornado.iostream import IOStream
from tornado.netutil import bind_sockets
from tornado.routing import Matcher, PathMatches, Rule, RuleRouter

from async_handlers import native_routes, start_native_services
from async_handlers.admission import Admission, MeteredExecutor
from async_handlers.base import NativeContext
from async_handlers.chat_poll import PATH as POLL_PATH
from async_handlers.chat_poll import PollParking
from async_handlers.events_poll import PATH as EVENTS_POLL_PATH
from async_handlers.events_poll import EventPollStart
from async_handlers.lean_get import LeanPath
from async_handlers.nearby import PATH as NEARBY_PATH
from async_handlers.nearby import answer as nearby_answer
from async_handlers.process_setup import freeze_startup_objects, listen_backlog, pin_to_one_cpu
from async_handlers.wsgi_container import WholeCallWSGIContainer
from async_handlers.wsgi_precheck import WsgiPrecheck
from tornado_dispatch import PathDispatch
from tornado_guard import GuardedHTTPServer, SecurityHeadersTransform, keep_nodelay
from wsgi_app import create_app, metrics, native_endpoints
from wsgi_app.config import (
    DEFAULT_SHUTDOWN_DRAIN_SECS,
    InsecureConfigError,
    ServerSettings,
    server_settings_from_env,
)
from wsgi_app.extensions import redis_client
from wsgi_app.logging_setup import configure_logging
from wsgi_app.redis_client import RedisTarget, make_async_client
from wsgi_app.services.auth.request_auth import note_nonce_epoch
from wsgi_app.trusted_proxies import parse_networks

log = logging.getLogger("datingtoday.server")

DRAIN_POLL_INTERVAL_SECS = 0.05
BODY_LIMIT_HEADROOM_BYTES = 1024 * 1024
METRICS_SAMPLE_MS = 1000


class CountingHTTPServer(GuardedHTTPServer):
    """``HTTPServer`` that knows how many client connections are open (for the drain)."""

    open_connections = 0

    def handle_stream(self, stream: IOStream, address: tuple[Any, ...]) -> None:
        self.open_connections += 1
        keep_nodelay(stream)
        super().handle_stream(stream, address)

    def on_close(self, server_conn: object) -> None:
        self.open_connections -= 1
        super().on_close(server_conn)


class WhileDraining(Matcher):
    """Matches native GETs (polls, nearby) once the process is draining: nginx retries those
    elsewhere. A native POST (a chat send) is served while draining, as Flask's requests are."""

    def __init__(self, path_pattern: str, service: TornadoService) -> None:
        self.paths = PathMatches(path_pattern)
        self.service = service

    def match(self, request: httputil.HTTPServerRequest) -> dict[str, Any] | None:
        if not self.service.draining or request.method not in ("GET", "HEAD"):
            return None
        return self.paths.match(request)


class FlaskUpload(Matcher):
    """Matches ``multipart/form-data`` requests to the paths whose uploads Flask serves
    (``native_endpoints.FLASK_UPLOAD_PATHS``): the native handler of such a path takes the rest."""

    def __init__(self, paths: frozenset[str]) -> None:
        self.paths = paths

    def match(self, request: httputil.HTTPServerRequest) -> dict[str, Any] | None:
        if request.path not in self.paths:
            return None
        content_type = request.headers.get("Content-Type", "")
        return {} if content_type.lower().lstrip().startswith("multipart/") else None


def refuse_while_draining(request: httputil.HTTPServerRequest) -> None:
    """Close the connection unanswered: nginx retries the (GET) request on another process.

    Nothing was done for it (no nonce spent), so the retry is safe; a 503 would be
    passed through to the client, as the dependency outages' 503s must be.
    """
    assert request.connection is not None
    # Tornado types it as the abstract HTTPConnection; the server's is an HTTP1Connection.
    cast(HTTP1Connection, request.connection).close()


class TornadoService:
    """The process: Flask app, worker pool, native context, router, server, shutdown."""

    def __init__(self, flask_app: Flask, threads: int | None = None) -> None:
        self.flask_app = flask_app
        self.executor = MeteredExecutor(
            threads or flask_app.config["WSGI_THREADS"], thread_name_prefix="wsgi"
        )
        # Native handlers' blocking calls get their own small pool, so long-poll and
        # nearby answers never queue behind slow Flask requests.
        self.native_executor = MeteredExecutor(
            flask_app.config.get("NATIVE_THREADS", 4), thread_name_prefix="native"
        )
        # Load shedding at the edge, from both pools' queues (async_handlers/admission.py).
        self.admission = Admission(self.executor, self.native_executor)
        self.context = NativeContext(
            flask_app=flask_app,
            executor=self.native_executor,
            redis=make_async_client(RedisTarget.from_config(flask_app.config)),
            write_executor=self.executor,  # native sends: beside Flask, not ahead of woken polls
        )
        # A GET poll parks as one small object, not a RequestHandler (async_handlers.chat_poll).
        self.parking = PollParking(self.context, lambda: self.draining)
        self.server: CountingHTTPServer | None = None
        self.sampler: PeriodicCallback | None = None
        self.draining = False
        self.stopped = asyncio.Event()

    def make_router(self) -> PathDispatch:
        routes = native_routes(self.context)
        native_app = tornado.web.Application(
            routes, transforms=[SecurityHeadersTransform], log_function=lambda handler: None
        )
        native_paths = "|".join(f"(?:{pattern})" for pattern, *_ in routes)
        container = WholeCallWSGIContainer(self.flask_app, self.executor, WsgiPrecheck.for_app(self.context))
        native_re = re.compile(f"(?:{native_paths})$")
        native_router = RuleRouter(
            [
                Rule(WhileDraining(native_re.pattern, self), refuse_while_draining),
                Rule(FlaskUpload(native_endpoints.FLASK_UPLOAD_PATHS), container),
                Rule(PathMatches(native_re), native_app),
            ]
        )
        nearby = LeanPath(self.context, NEARBY_PATH, nearby_answer, lambda: self.draining)
        fast_paths = {
            POLL_PATH: self.parking.start,
            EVENTS_POLL_PATH: EventPollStart(self.parking).start,
            NEARBY_PATH: nearby.start,
        }
        return PathDispatch(native_re, native_router, container, fast_paths, self.admission)

    def listen(self, port: int, address: str = "127.0.0.1") -> HTTPServer:
        config = self.flask_app.config
        self.server = CountingHTTPServer(
            self.make_router(),
            trusted=parse_networks(config["TRUSTED_PROXIES"]),
            max_body_bytes=config["MAX_CONTENT_LENGTH"],
            max_body_size=self.flask_app.config["MAX_CONTENT_LENGTH"] + BODY_LIMIT_HEADROOM_BYTES,
            idle_connection_timeout=120,
        )
        self.parking.server = self.server
        self.server.add_sockets(bind_sockets(port, address, backlog=listen_backlog()))
        start_native_services(self.context)
        metrics.process_started(port)
        self.sampler = PeriodicCallback(self.sample_metrics, METRICS_SAMPLE_MS)
        self.sampler.start()
        self.admission.start()
        return self.server

    def open_connections(self) -> int:
        """Client connections still open: the server's, and the polls' detached streams."""
        server = self.server.open_connections if self.server is not None else 0
        return server + self.parking.detached

    def sample_metrics(self) -> None:
        """This process's gauges: waiting polls, jobs queued on each pool (``metrics`` module)."""
        metrics.sample_process(
            self.context.waiters.count(),
            {
                "wsgi": self.executor.queued,
                "native": self.native_executor.queued,
            },
        )

    async def shutdown(self, drain_secs: float = DEFAULT_SHUTDOWN_DRAIN_SECS) -> None:
        """Drain (see the module docstring), then release the pools and Redis."""
        if self.draining:
            return
        self.draining = True
        deadline = time.monotonic() + drain_secs
        log.info("shutting down: draining (not listening, keep-alive off)")
        if self.sampler is not None:
            self.sampler.stop()
        self.admission.stop()
        if self.server is not None:
            self.server.conn_params.no_keep_alive = True
            self.server.stop()
        for hook in self.context.shutdown_hooks:
            try:
                await hook()
            except Exception:
                log.exception("shutdown hook failed")
        server = self.server
        while server is not None and self.open_connections() > 0 and time.monotonic() < deadline:
            await asyncio.sleep(DRAIN_POLL_INTERVAL_SECS)
        if server is not None and server.open_connections:
            log.warning("%d connections open after %.0fs; closing them", server.open_connections, drain_secs)
            await server.close_all_connections()
        loop = asyncio.get_running_loop()

        def shutdown_pools() -> None:
            self.executor.shutdown(wait=True)
            self.native_executor.shutdown(wait=True)

        drained = loop.run_in_executor(None, shutdown_pools)
        try:
            await asyncio.wait_for(asyncio.shield(drained), max(deadline - time.monotonic(), 1.0))
        except TimeoutError:
            log.warning("worker pools still busy after %.0fs; exiting", drain_secs)
        self.context.redis_batch.close()
        await self.context.redis.aclose()
        metrics.process_stopping()
        log.info("drained")
        self.stopped.set()


def parse_args(argv: list[str], settings: ServerSettings | None = None) -> argparse.Namespace:
    """``--port`` and ``--address`` override ``PORT`` and ``BIND_ADDRESS`` (``wsgi_app.config``)."""
    settings = settings or server_settings_from_env()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=settings.port)
    parser.add_argument("--address", default=settings.bind_address)
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace, settings: ServerSettings) -> None:
    try:
        flask_app = create_app()
    except InsecureConfigError as err:
        log.error("%s", err)
        raise SystemExit(2) from None
    with flask_app.app_context():
        note_nonce_epoch(redis_client())  # a Redis that lost its memory is noticed before listening
    service = TornadoService(flask_app)
    try:
        service.listen(args.port, args.address)
    except OSError as err:
        if err.errno != errno.EADDRINUSE:
            raise
        log.error(
            "%s:%d is already in use (is another server, e.g. a second ./scripts/run.sh, running?): "
            "stop it or choose another port with PORT=... or --port",
            args.address,
            args.port,
        )
        raise SystemExit(2) from None
    frozen = freeze_startup_objects()
    metrics.watch_gc_pauses()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(
            signum, lambda: asyncio.ensure_future(service.shutdown(settings.shutdown_drain_secs))
        )
    log.info(
        "listening on http://%s:%d (pid %d, %d startup objects frozen)",
        args.address,
        args.port,
        os.getpid(),
        frozen,
    )
    await service.stopped.wait()


def main(argv: list[str] | None = None) -> None:
    settings = server_settings_from_env()
    configure_logging(settings.log_level, settings.log_format)
    args = parse_args(sys.argv[1:] if argv is None else argv, settings)
    cpu = pin_to_one_cpu(settings.cpu_affinity, args.port)
    if cpu is not None:
        log.info("threads kept to CPU %d (CPU_AFFINITY=%s)", cpu, settings.cpu_affinity)
    if settings.event_loop == "uvloop":
        uvloop.run(serve(args, settings))
    else:
        asyncio.run(serve(args, settings))


if __name__ == "__main__":
    main()
