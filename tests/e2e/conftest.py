"""Fixtures of the end-to-end tier: a database of its own (migrated, demo tenant seeded) on the
test run's Postgres, and the call stack on loopback (livekit-server, our webhook service, our
agent worker with offline providers), started once per session and stopped at its end.

A missing binary skips the tests that need it, with a reason naming it. When
FRONTDESK_E2E_REPORT names a file, the outcome of every e2e test is written there at the end
of the run (.ci/run prints it, so a skip cannot go unnoticed)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from db.demo.seed import seed_demo
from db.migrate import migrate
from db.pool import connect
from tests.conftest import create_database, drop_database, with_database
from tests.e2e.servers import BINARIES, find_binary, missing
from tests.e2e.services import CallStack

_STACKS: list[CallStack] = []  # running stacks, whose logs a failing test shows
_OUTCOMES: dict[str, tuple[str, str]] = {}  # test id -> (outcome, skip reason)
_NOTES: list[str] = []  # figures the tests measured, shown at the end of every run


def note(text: str) -> None:
    """Report a measured figure (e.g. voice-to-voice latency) in the run's terminal summary,
    whether or not output capture is on."""
    _NOTES.append(text)


def skip_reason(*binaries: str) -> str | None:
    """Why e2e tests cannot run here: binaries from .ci/build-servers.sh, plus espeak-ng."""
    reason = missing(*binaries)
    if reason:
        overrides = [BINARIES[n] for n in binaries if find_binary(n) is None and n in BINARIES]
        reason += f" (or point {' / '.join(overrides)} at a binary)"
    if shutil.which("espeak-ng") is None:
        reason = (reason + "; " if reason else "") + "missing espeak-ng (apt-get install espeak-ng)"
    return reason


async def create_demo_database(admin_dsn: str) -> tuple[str, str]:
    """A new database, migrated, with the demo tenant: (name, dsn)."""
    name = await create_database(admin_dsn, prefix="e2e")
    dsn = with_database(admin_dsn, name)
    conn = await connect(dsn)
    try:
        await migrate(conn)
        await seed_demo(conn)
    finally:
        await conn.close()
    return name, dsn


@pytest.fixture(scope="session")
async def e2e_dsn(admin_dsn: str) -> AsyncIterator[str]:
    if reason := skip_reason("livekit-server"):
        pytest.skip(reason)
    name, dsn = await create_demo_database(admin_dsn)
    yield dsn
    await drop_database(admin_dsn, name)


@pytest.fixture(scope="session")
def e2e_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def call_stack(e2e_workdir: Path, e2e_dsn: str) -> Iterator[CallStack]:
    """livekit-server + webhook service + agent worker on the e2e database, for the session."""
    stack = CallStack(e2e_workdir, dsn=e2e_dsn).start()
    _STACKS.append(stack)
    yield stack
    _STACKS.remove(stack)
    stack.stop()


@pytest.fixture
def live_stack(call_stack: CallStack) -> CallStack:
    """The session's stack with its worker running (a test that killed it gets a new one)."""
    assert call_stack.worker is not None
    if not call_stack.worker.alive():
        call_stack.worker.start()
    return call_stack


@pytest.fixture
async def e2e_conn(e2e_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await connect(e2e_dsn)
    yield conn
    await conn.close()


def register_stack(stack: CallStack) -> None:
    """Show this stack's logs too when a test fails (for stacks a test builds itself)."""
    _STACKS.append(stack)


def unregister_stack(stack: CallStack) -> None:
    if stack in _STACKS:
        _STACKS.remove(stack)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.failed:
        for stack in _STACKS:
            for process in stack.processes():
                tail = "\n".join(line[:400] for line in process.log_tail(60).splitlines())
                report.sections.append((f"{process.name} log ({process.log_path})", tail))
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or report.outcome != "passed":
        reason = ""
        if report.skipped and isinstance(report.longrepr, tuple):
            reason = report.longrepr[2].removeprefix("Skipped: ")
        if report.nodeid not in _OUTCOMES or _OUTCOMES[report.nodeid][0] == "passed":
            _OUTCOMES[report.nodeid] = (report.outcome, reason)


def pytest_terminal_summary(terminalreporter) -> None:
    if _NOTES:
        terminalreporter.section("e2e figures")
        for text in _NOTES:
            terminalreporter.write_line(text)


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = os.environ.get("FRONTDESK_E2E_REPORT")
    if not path:
        return
    name = lambda nodeid: nodeid.split("::")[-1]  # noqa: E731
    ran = [name(n) for n, (o, _) in _OUTCOMES.items() if o != "skipped"]
    failed = [name(n) for n, (o, _) in _OUTCOMES.items() if o == "failed"]
    skipped: dict[str, list[str]] = {}
    for nodeid, (outcome, reason) in _OUTCOMES.items():
        if outcome == "skipped":
            skipped.setdefault(reason, []).append(name(nodeid))
    because = "; ".join(f"{', '.join(tests)}: {reason}" for reason, tests in skipped.items())
    Path(path).write_text(
        f"e2e scenarios: ran {len(ran)} [{', '.join(ran) or '-'}]"
        + (f", of which failed {len(failed)} [{', '.join(failed)}]" if failed else "")
        + f"; skipped {sum(map(len, skipped.values()))} [{because or '-'}]\n")
