"""Our own processes for the e2e tier, started from their normal entrypoints: the webhook service
(`python -m webhooks`) and the agent worker (`python -m agent start`), wired to a LiveKitServer of
tests/e2e/servers.py and to one database. `CallStack` starts the three in dependency order.

Like servers.py this is plain Python (no pytest): tests/e2e/conftest.py wraps it in fixtures."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from tests.e2e.servers import (
    API_KEY,
    API_SECRET,
    HOST,
    LiveKitServer,
    LiveKitSIP,
    ManagedProcess,
    Redis,
    free_port,
)

REPO = Path(__file__).resolve().parents[2]
DEMO_ORGANIZATION = "bright-smile-dental"
# Rooms close 1 s after the last participant leaves (default 20 s), so room_finished (and the
# call's closing by webhook) comes while the test waits; an empty room lives 10 s.
ROOM_TIMEOUTS = {"room": {"empty_timeout": 10, "departure_timeout": 1}}


def _env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "DATABASE_URL"))}
    env.update(PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1", **values)
    return env


class WebhookService:
    """`python -m webhooks` on a free loopback port, verifying with the server's key pair."""

    def __init__(self, workdir: Path, *, dsn: str, api_key: str, api_secret: str) -> None:
        self.port = free_port()
        self.process = ManagedProcess(
            "webhooks",
            [sys.executable, "-m", "webhooks", "--host", HOST, "--port", str(self.port)],
            workdir / "webhooks.log",
            env=_env(LIVEKIT_API_KEY=api_key, LIVEKIT_API_SECRET=api_secret, DATABASE_URL=dsn,
                     MIGRATE_ON_START="false", WEBHOOK_JOURNAL_DIR=str(workdir / "webhook-journal")),
            cwd=REPO,
        )

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/livekit/webhook"

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{self.port}/readyz", timeout=1) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def start(self, timeout: float = 30.0) -> WebhookService:
        self.process.start()
        self.process.wait_until(self._ready, timeout, "/readyz")
        return self

    def stop(self) -> None:
        self.process.stop()


class AgentWorker:
    """`python -m agent start` with the offline providers, registered with `livekit`.

    Production mode, as users run it: job processes are forked ahead of calls, and LiveKit's
    adaptive interruption (a LiveKit Cloud service, which `dev` mode tries to reach) stays off.
    Its health server takes a free loopback port. Only one worker runs at a time: with automatic
    dispatch (an empty AGENT_NAME: every new room gets this worker's agent), two would compete
    for the same rooms."""

    _running: set[AgentWorker] = set()

    def __init__(self, workdir: Path, livekit: LiveKitServer, *, dsn: str, agent_name: str = "",
                 name: str = "agent") -> None:
        self.log_path = workdir / f"{name}.log"
        self.process = ManagedProcess(
            name,
            [sys.executable, "-m", "agent", "start"],
            self.log_path,
            env=_env(
                LIVEKIT_URL=livekit.ws_url, LIVEKIT_API_KEY=livekit.api_key,
                LIVEKIT_API_SECRET=livekit.api_secret, LIVEKIT_LOG_LEVEL="info",
                DATABASE_URL=dsn, MIGRATE_ON_START="false", AGENT_NAME=agent_name,
                PROVIDERS="tests.e2e.providers:offline",
                DEFAULT_ORGANIZATION_SLUG=DEMO_ORGANIZATION,
                SPOOL_DIR=str(workdir / f"{name}-spool"),
                # The test's call must be answered however busy the machine is.
                LOAD_THRESHOLD="inf", HEALTH_HOST=HOST, HEALTH_PORT="0",
            ),
            cwd=REPO,
            # SIGTERM drains (waits for running calls); the second one stops at once.
            stop_signals=((signal.SIGTERM, 5.0), (signal.SIGTERM, 5.0)),
        )
        self._log_offset = 0

    def _log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[self._log_offset:]
        except OSError:
            return ""

    def start(self, timeout: float = 60.0) -> AgentWorker:
        for other in list(AgentWorker._running - {self}):  # one worker per stack
            other.stop()
        AgentWorker._running.add(self)
        with contextlib.suppress(OSError):
            self._log_offset = len(self.log_path.read_text(errors="replace"))
        self.process.start()
        self.process.wait_until(lambda: "registered worker" in self._log(), timeout,
                                "worker registration")
        return self

    def alive(self) -> bool:
        return self.process.alive()

    def kill_tree(self) -> list[int]:
        """SIGKILL the worker and every process under it (job processes included), children
        first so none outlives its parent long enough to notice; returns the pids killed."""
        assert self.process.proc is not None
        root = psutil.Process(self.process.proc.pid)
        victims = [*reversed(root.children(recursive=True)), root]
        for victim in victims:
            with contextlib.suppress(psutil.NoSuchProcess):
                victim.kill()
        psutil.wait_procs(victims, timeout=5)
        self.stop(fast=True)  # reap
        return [v.pid for v in victims]

    def job_processes(self) -> list[psutil.Process]:
        """Processes under the worker (the forkserver and the job processes it forked)."""
        assert self.process.proc is not None
        return psutil.Process(self.process.proc.pid).children(recursive=True)

    def stop(self, *, fast: bool = False) -> None:
        AgentWorker._running.discard(self)
        self.process.stop(fast=fast)


class CallStack:
    """livekit-server posting webhooks to our webhook service, and the agent worker, on one
    database: everything a call touches, on loopback. With `sip`, also Redis and livekit-sip
    (the SIP bridge), and usually an `agent_name` for the dispatch rule to name."""

    def __init__(self, workdir: Path, *, dsn: str, sip: bool = False, agent_name: str = "") -> None:
        self.workdir = workdir
        self.dsn = dsn
        self.want_sip = sip
        self.agent_name = agent_name
        self.webhooks: WebhookService | None = None
        self.redis: Redis | None = None
        self.livekit: LiveKitServer | None = None
        self.sip: LiveKitSIP | None = None
        self.worker: AgentWorker | None = None

    def start(self) -> CallStack:
        try:
            self.webhooks = WebhookService(self.workdir, dsn=self.dsn, api_key=API_KEY,
                                           api_secret=API_SECRET).start()
            if self.want_sip:
                self.redis = Redis(self.workdir).start()
            self.livekit = LiveKitServer(
                self.workdir, webhook_urls=[self.webhooks.url],
                redis_address=self.redis.address if self.redis else None,
                extra={"logging": {"json": True}, **ROOM_TIMEOUTS}).start()
            if self.redis is not None:
                self.sip = LiveKitSIP(self.workdir, self.livekit, self.redis.address).start()
            self.worker = AgentWorker(self.workdir, self.livekit, dsn=self.dsn,
                                      agent_name=self.agent_name).start()
        except BaseException:
            self.stop()
            raise
        return self

    def _services(self) -> list:
        services = (self.webhooks, self.redis, self.livekit, self.sip, self.worker)
        return [s for s in services if s is not None]

    def processes(self) -> list[ManagedProcess]:
        return [s.process for s in self._services()]

    def stop(self) -> None:
        # The worker first (it leaves its rooms), the SIP bridge (it hangs up), the server
        # (room_finished), then the webhook service once the server has stopped posting.
        for service in (self.worker, self.sip, self.livekit, self.redis, self.webhooks):
            if service is not None:
                service.stop()

    def sent_webhooks(self, room_sid: str) -> list[dict]:
        """The webhooks livekit-server logged as delivered for `room_sid` ("sent webhook", JSON
        log lines), in the order it sent them."""
        import json

        assert self.livekit is not None
        sent = []
        for line in self.livekit.process.log_path.read_text(errors="replace").splitlines():
            if '"sent webhook"' not in line and '"failed to send webhook"' not in line:
                continue
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if entry.get("roomID") == room_sid:
                    sent.append(entry)
        return sent

