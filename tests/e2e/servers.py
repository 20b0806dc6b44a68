"""Real LiveKit servers on loopback for end-to-end tests.

Plain classes, no pytest in here: a conftest wraps them in fixtures and turns `missing()`
into skip reasons. Everything binds to 127.0.0.1, every process writes its stdout/stderr to
a log file in its work dir, and every process dies with the Python process that started it
(PR_SET_PDEATHSIG) so a killed test run leaves nothing behind.

    with tempfile.TemporaryDirectory() as tmp, Stack(Path(tmp), sip=True,
                                                     webhook_urls=[url]) as stack:
        api = LiveKitAPI(stack.livekit.http_url, stack.livekit.api_key, stack.livekit.api_secret)
        ... sipp -> 127.0.0.1:{stack.sip.sip_port} ...

Binaries come from .ci/build-servers.sh (see `find_binary`). Config keys were checked against
livekit-server v1.13.5 (`pkg/config/config.go`, mediatransportutil `rtcconfig`), which runs in
strict mode (an unknown key fails the start). livekit-sip parses leniently (unknown keys are
ignored) and its keys were checked against upstream `pkg/config/config.go` of a recent main,
not v1.11.0 itself: the module proxy reachable here refuses github.com/livekit/sip.

Caveat: PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not only the
process. Start servers from the main thread (sync pytest fixtures run there) or from a thread
that outlives them, never from a short-lived worker thread.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

HOST = "127.0.0.1"
API_KEY = "devkey"
# livekit-server logs an error for secrets under 32 characters (not fatal, but noisy).
API_SECRET = "frontdesk-e2e-secret-0123456789abcdef"

CACHE_BIN = Path(os.environ.get("FRONTDESK_CACHE", Path.home() / ".cache" / "frontdesk")) / "bin"

# name -> env var that overrides where it is found
BINARIES = {
    "livekit-server": "LIVEKIT_SERVER_BIN",
    "livekit-sip": "LIVEKIT_SIP_BIN",
    "redis-server": "REDIS_SERVER_BIN",
    "sipp": "SIPP_BIN",
}


class ServerError(RuntimeError):
    """A server could not be found, did not start, or died."""


# --- binaries ------------------------------------------------------------------------


def find_binary(name: str) -> str | None:
    """The env override (LIVEKIT_SERVER_BIN, ...), else the build cache, else PATH."""
    override = os.environ.get(BINARIES.get(name, ""), "")
    if override:
        return override if os.access(override, os.X_OK) else None
    cached = CACHE_BIN / name
    if os.access(cached, os.X_OK):
        return str(cached)
    return shutil.which(name)


def require_binary(name: str) -> str:
    path = find_binary(name)
    if path is None:
        hint = BINARIES.get(name, "")
        raise ServerError(f"{name} not found (set {hint}, run .ci/build-servers.sh, or put it on PATH)")
    return path


def missing(*names: str) -> str | None:
    """A skip reason naming the binaries that are not available, or None if all are."""
    absent = [n for n in names if find_binary(n) is None]
    if not absent:
        return None
    return f"missing {', '.join(absent)}; run .ci/build-servers.sh"


# --- ports ---------------------------------------------------------------------------

# Ports handed out by this process: the OS may give the same free port to two callers
# between "probe" and "server binds", so never hand one out twice ourselves.
_taken: set[int] = set()


def _bindable(port: int, kinds: Sequence[int]) -> bool:
    for kind in kinds:
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind((HOST, port))
            except OSError:
                return False
    return True


def free_port(*, tcp: bool = True, udp: bool = False) -> int:
    """A loopback port free for TCP and/or UDP right now (SIP wants both on one number)."""
    kinds = ([socket.SOCK_STREAM] if tcp else []) + ([socket.SOCK_DGRAM] if udp else [])
    for _ in range(100):
        with socket.socket(socket.AF_INET, kinds[0]) as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        if port not in _taken and _bindable(port, kinds):
            _taken.add(port)
            return port
    raise ServerError("no free loopback port")


def free_port_range(count: int, *, udp: bool = True, tcp: bool = False) -> tuple[int, int]:
    """`count` consecutive free ports (inclusive start, end) for media (RTP/ICE) ranges.

    Chosen below the kernel's ephemeral range so outgoing connections of the test run do not
    land in a range a server will bind later.
    """
    kinds = ([socket.SOCK_DGRAM] if udp else []) + ([socket.SOCK_STREAM] if tcp else [])
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    ceiling = max(low, 12000) - count
    for _ in range(200):
        start = random.randrange(10000, ceiling)
        ports = range(start, start + count)
        if not _taken.intersection(ports) and all(_bindable(p, kinds) for p in ports):
            _taken.update(ports)
            return start, start + count - 1
    raise ServerError(f"no {count} consecutive free loopback ports")


# --- processes -----------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)  # loaded before fork: the child must not dlopen
_running: set[ManagedProcess] = set()


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    def preexec() -> None:  # runs in the child between fork and exec
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent_pid:  # parent died before prctl took effect
            os._exit(1)

    return preexec


class ManagedProcess:
    """A child process with a log file, killed with us, stopped by signals then SIGKILL.

    `stop_signals` are (signal, seconds to wait for exit) pairs, sent in order until the
    process exits; SIGKILL follows if it still has not.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        stop_signals: Sequence[tuple[int, float]] = ((signal.SIGTERM, 10.0),),
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = log_path
        self.stop_signals = stop_signals
        self.env = env
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the fd
            log.write(f"$ {' '.join(self.argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                preexec_fn=_die_with_parent(os.getpid()),
            )
        _running.add(self)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        if not self.alive():
            code = self.proc.returncode if self.proc else None
            raise ServerError(f"{self.name} exited (code {code}); log {self.log_path}:\n{self.log_tail()}")

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll `ready()` until true; fail early if the process dies."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            if ready():
                return
            if time.monotonic() > deadline:
                raise ServerError(
                    f"{self.name}: {what} not ready after {timeout:.0f}s; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def stop(self, *, fast: bool = False) -> int | None:
        """Stop and reap; `fast` skips straight to SIGKILL (atexit, where time is short)."""
        _running.discard(self)
        if self.proc is None:
            return None
        for sig, wait in () if fast else self.stop_signals:
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(wait)
        if self.proc.poll() is None:
            self.proc.kill()
        return self.proc.wait()


@atexit.register
def _stop_all() -> None:
    # PDEATHSIG covers a killed interpreter; this covers a normal exit that forgot stop().
    for p in list(_running):
        p.stop(fast=True)


def _tcp_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


def _sip_answers(port: int) -> bool:
    """True once a SIP OPTIONS over UDP gets any response (UDP has no "listening" to probe)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        s.settimeout(0.5)
        local = s.getsockname()[1]
        tag = random.getrandbits(32)
        request = (
            f"OPTIONS sip:ping@{HOST}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {HOST}:{local};branch=z9hG4bK{tag:x};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:probe@{HOST}>;tag={tag:x}\r\n"
            f"To: <sip:ping@{HOST}:{port}>\r\n"
            f"Call-ID: probe-{tag:x}@{HOST}\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        try:
            s.sendto(request.encode(), (HOST, port))
            return s.recv(4096).startswith(b"SIP/2.0 ")
        except OSError:  # timeout, or ICMP port unreachable surfacing as ECONNREFUSED
            return False


def _write_yaml(path: Path, config: dict) -> Path:
    # JSON is valid YAML (flow style), so no YAML library is needed; both servers parse it
    # with gopkg.in/yaml.v3.
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def _merge(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


# --- servers -------------------------------------------------------------------------


class Redis:
    """redis-server on a free loopback port, in memory only."""

    def __init__(self, workdir: Path, *, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        options = {
            "--bind": HOST,
            "--port": str(self.port),
            "--save": "",  # no RDB snapshots
            "--appendonly": "no",
            "--dir": str(workdir),
        }
        self.process = ManagedProcess(
            "redis-server",
            [require_binary("redis-server"), *(x for kv in options.items() for x in kv)],
            workdir / "redis.log",
        )

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def _pong(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self, timeout: float = 10.0) -> Redis:
        self.process.start()
        self.process.wait_until(self._pong, timeout, "PING")
        return self

    def stop(self) -> None:
        self.process.stop()


class LiveKitServer:
    """livekit-server from a generated config, ICE on loopback only.

    `extra` is deep-merged into the config (e.g. {"room": {"empty_timeout": 5}}); the server
    runs in strict-config mode, so a misspelt key fails the start with a clear log line.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        api_key: str = API_KEY,
        api_secret: str = API_SECRET,
        webhook_urls: Sequence[str] = (),
        redis_address: str | None = None,
        ice_ports: int = 20,
        log_level: str = "info",
        extra: dict | None = None,
    ) -> None:
        self.workdir = workdir
        self.api_key = api_key
        self.api_secret = api_secret
        self.port = free_port()
        # Nothing listens here: clients get a loopback STUN URL instead of the public default
        # (stun.l.google.com), so nothing tries to leave the machine.
        self.stun_port = free_port(tcp=False, udp=True)
        self.ice_range = free_port_range(ice_ports)
        config: dict = {
            "port": self.port,
            "bind_addresses": [HOST],
            "rtc": {
                "node_ip": HOST,
                # No rtc.tcp_port: the ICE/TCP listener binds all interfaces (not bind_addresses),
                # and UDP on loopback never needs the TCP fallback.
                "tcp_port": 0,
                "port_range_start": self.ice_range[0],
                "port_range_end": self.ice_range[1],
                "use_external_ip": False,
                "enable_loopback_candidate": True,  # loopback is the only interface we offer
                "stun_servers": [f"{HOST}:{self.stun_port}"],
                "ips": {"includes": [f"{HOST}/32"]},
            },
            "keys": {api_key: api_secret},
            "logging": {"level": log_level},
        }
        if webhook_urls:
            config["webhook"] = {"api_key": api_key, "urls": list(webhook_urls)}
        if redis_address:  # needed for SIP: trunks/rules live in Redis, livekit-sip talks psrpc
            config["redis"] = {"address": redis_address}
        _merge(config, extra or {})
        self.config = config
        self.config_path = _write_yaml(workdir / "livekit.yaml", config)
        self.process = ManagedProcess(
            "livekit-server",
            [require_binary("livekit-server"), "--config", self.config_path],
            workdir / "livekit-server.log",
            # The first SIGTERM drains: it waits, with no limit, for participants to leave.
            # A second one forces rooms closed (participant_left / room_finished webhooks).
            stop_signals=((signal.SIGTERM, 2.0), (signal.SIGTERM, 8.0)),
        )

    @property
    def http_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}"

    def _healthy(self) -> bool:
        # GET / answers 200 "OK" once the node has published its stats (it is routable).
        try:
            with urllib.request.urlopen(self.http_url + "/", timeout=1) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def start(self, timeout: float = 20.0) -> LiveKitServer:
        self.process.start()
        self.process.wait_until(self._healthy, timeout, "HTTP health check")
        return self

    def stop(self) -> None:
        self.process.stop()


class LiveKitSIP:
    """livekit-sip (SIP over UDP+TCP on one loopback port) attached to a LiveKitServer."""

    def __init__(
        self,
        workdir: Path,
        livekit: LiveKitServer,
        redis_address: str,
        *,
        rtp_ports: int = 20,
        log_level: str = "info",
        extra: dict | None = None,
    ) -> None:
        self.workdir = workdir
        self.sip_port = free_port(tcp=True, udp=True)
        self.rtp_range = free_port_range(rtp_ports)
        config: dict = {
            "api_key": livekit.api_key,
            "api_secret": livekit.api_secret,
            "ws_url": livekit.ws_url,
            "redis": {"address": redis_address},
            "sip_port": self.sip_port,
            # A PortRange is parsed from a scalar only ("start-end"); a {start, end} mapping
            # is silently read as empty and falls back to 10000-20000.
            "rtp_port": f"{self.rtp_range[0]}-{self.rtp_range[1]}",
            "listen_ip": HOST,
            # use_external_ip and nat_1_to_1_ip are mutually exclusive; the NAT IP is what
            # goes into Via/Contact/SDP, so it must be the loopback address too.
            "use_external_ip": False,
            "nat_1_to_1_ip": HOST,
            "logging": {"level": log_level},
            # health_port / prometheus_port stay unset (0 = off): they bind all interfaces.
        }
        _merge(config, extra or {})
        self.config = config
        self.config_path = _write_yaml(workdir / "livekit-sip.yaml", config)
        self.process = ManagedProcess(
            "livekit-sip",
            [require_binary("livekit-sip"), "--config", self.config_path],
            workdir / "livekit-sip.log",
            # SIGTERM waits for active calls to finish; SIGINT hangs them up and exits.
            stop_signals=((signal.SIGINT, 10.0),),
        )

    @property
    def sip_uri_host(self) -> str:
        return f"{HOST}:{self.sip_port}"

    def start(self, timeout: float = 20.0) -> LiveKitSIP:
        self.process.start()
        self.process.wait_until(
            lambda: _sip_answers(self.sip_port) or _tcp_open(self.sip_port), timeout, "SIP port"
        )
        return self

    def stop(self) -> None:
        self.process.stop()


class Stack:
    """Redis (when asked or for SIP) + livekit-server + optionally livekit-sip.

    Started in that order, stopped in reverse; a failed start stops what did start.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        sip: bool = False,
        redis: bool | None = None,
        webhook_urls: Sequence[str] = (),
        livekit_extra: dict | None = None,
        sip_extra: dict | None = None,
    ) -> None:
        self.workdir = workdir
        self.want_sip = sip
        # SIP needs Redis; without livekit-sip it still lets the SIP API (trunks, rules) work.
        self.want_redis = bool(redis) or sip
        self.webhook_urls = list(webhook_urls)
        self.livekit_extra = livekit_extra
        self.sip_extra = sip_extra
        self.redis: Redis | None = None
        self.livekit: LiveKitServer | None = None
        self.sip: LiveKitSIP | None = None

    def start(self) -> Stack:
        try:
            if self.want_redis:
                self.redis = Redis(self.workdir).start()
            self.livekit = LiveKitServer(
                self.workdir,
                webhook_urls=self.webhook_urls,
                redis_address=self.redis.address if self.redis else None,
                extra=self.livekit_extra,
            ).start()
            if self.want_sip:
                assert self.redis is not None
                self.sip = LiveKitSIP(
                    self.workdir, self.livekit, self.redis.address, extra=self.sip_extra
                ).start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for server in (self.sip, self.livekit, self.redis):
            if server is not None:
                server.stop()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
