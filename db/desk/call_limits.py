"""What one call may do: how many times it may try a confirmation code and name, and how many
appointments it may book. Counted per call (agent.call.FrontDesk.limits), so a caller cannot
guess codes or fill the calendar by talking long enough.

Tries still running count against the limits too: the model may call tools in parallel, and the
check and the count happen with no await between them, so parallel calls cannot slip past."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from db.desk.identity import IdentityLocked, IdentityRefused
from db.errors import DomainError

MAX_IDENTITY_REFUSALS = 3
DEFAULT_MAX_BOOKINGS = 3  # the policy max_bookings_per_call, when a configuration sets none


class TooManyBookings(DomainError):
    """This call booked as many appointments as one call may."""


@dataclass
class CallLimits:
    max_bookings: int = DEFAULT_MAX_BOOKINGS
    max_identity_refusals: int = MAX_IDENTITY_REFUSALS
    bookings: int = 0
    identity_refusals: int = 0
    _running: dict[str, int] = field(default_factory=lambda: {"booking": 0, "identity": 0},
                                     init=False, repr=False)

    @classmethod
    def from_policies(cls, policies: Mapping | None) -> CallLimits:
        """The limits of an agent config's policies (validated as a whole number >= 0 when the
        configuration is created; anything else keeps the default rather than fail the call)."""
        value = (policies or {}).get("max_bookings_per_call")
        valid = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        return cls(max_bookings=value if valid else DEFAULT_MAX_BOOKINGS)

    @property
    def identity_locked(self) -> bool:
        return self.identity_refusals >= self.max_identity_refusals

    @contextlib.contextmanager
    def booking(self) -> Iterator[None]:
        """One booking: refused (TooManyBookings) when the call has booked its maximum; counted
        when the block completes."""
        if self.bookings + self._running["booking"] >= self.max_bookings:
            raise TooManyBookings(
                f"this call has booked the most appointments one call may book ({self.max_bookings}); "
                "offer to transfer the caller to a person for more")
        with self._running_one("booking"):
            yield
        self.bookings += 1

    @contextlib.contextmanager
    def identity_attempt(self) -> Iterator[None]:
        """One try at naming an appointment by code and name. Once `max_identity_refusals` tries
        were refused, refused again without running the block (IdentityLocked). An
        IdentityRefused from the block is counted; the last one allowed comes out as
        IdentityLocked, with its reason, so the model stops and offers a person."""
        if self.identity_refusals + self._running["identity"] >= self.max_identity_refusals:
            self.identity_refusals += 1
            raise IdentityLocked()
        try:
            with self._running_one("identity"):
                yield
        except IdentityRefused as exc:
            self.identity_refusals += 1
            if self.identity_locked:
                raise IdentityLocked(exc.reason) from exc
            raise

    @contextlib.contextmanager
    def _running_one(self, kind: str) -> Iterator[None]:
        self._running[kind] += 1
        try:
            yield
        finally:
            self._running[kind] -= 1
