"""Our database errors. Repositories raise these, never asyncpg's, with messages a person can act
on; callers turn them into a spoken ToolError or an HTTP status."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import asyncpg


class DatabaseError(Exception):
    """Base of every error our repositories raise."""


class NotFound(DatabaseError):
    pass


class CallNotFound(NotFound):
    pass


class Conflict(DatabaseError):
    pass


class DuplicateSession(Conflict):
    pass


class InvalidInput(DatabaseError):
    pass


class Unavailable(DatabaseError):
    """The database could not be reached or went away; the operation may be retried."""


class DomainError(ValueError):
    """A rule of the domain refused a value without asking the database (a malformed phone
    number, a booking inside the lead time). Its message is meant for the person who gave it."""


# constraint name -> (error class, message). Domain modules add their own entries.
CONSTRAINTS: dict[str, tuple[type[DatabaseError], str]] = {
    "voice_calls_session_id_key": (DuplicateSession, "a call with this session id already exists"),
    "voice_calls_pkey": (DuplicateSession, "a call with this id already exists"),
    "voice_calls_duration_check": (InvalidInput, "a call's duration cannot be negative"),
    "voice_calls_tokens_check": (InvalidInput, "token counts cannot be negative"),
    "voice_calls_closed_by_check": (InvalidInput, "closed_by must be 'agent' or 'webhook'"),
    "call_participants_call_id_fkey": (CallNotFound, "no call with this id: create the call first"),
    "call_participants_duration_check": (InvalidInput, "a participant's duration cannot be negative"),
    "voice_messages_call_id_fkey": (CallNotFound, "no call with this id: create the call first"),
    "voice_messages_call_sequence_key": (
        Conflict, "another message of this call already has this sequence number"),
    "voice_messages_sequence_check": (InvalidInput, "sequence numbers start at 0"),
    "voice_messages_confidence_check": (
        InvalidInput, "transcript confidence must be between 0 and 1"),
    "voice_messages_latency_check": (InvalidInput, "latency figures cannot be negative"),
    "voice_messages_tokens_check": (InvalidInput, "token counts cannot be negative"),
    "call_events_call_id_fkey": (CallNotFound, "no call with this id: create the call first"),
    "call_events_severity_check": (
        InvalidInput, "severity must be one of debug, info, warning, error, critical"),
    "call_analyses_call_id_fkey": (CallNotFound, "no call with this id: create the call first"),
    # Front-desk domain (sql/0002-0005): tenancy, hours, catalog, appointments, knowledge, configs.
    "organizations_slug_key": (Conflict, "an organisation with this slug already exists"),
    "organizations_slug_check": (InvalidInput, "a slug is lowercase letters and digits joined by '-'"),
    "organizations_name_check": (InvalidInput, "an organisation needs a name"),
    "organizations_timezone_check": (InvalidInput, "unknown time zone: use an IANA name"),
    "organization_members_role_check": (InvalidInput, "a member's role is owner, manager or staff"),
    "organization_members_user_id_fkey": (NotFound, "no user with this id"),
    "organization_members_organization_id_fkey": (NotFound, "no organisation with this id"),
    "locations_organization_id_fkey": (NotFound, "no organisation with this id"),
    "locations_org_slug_key": (Conflict, "this organisation already has a location with this slug"),
    "locations_slug_check": (InvalidInput, "a slug is lowercase letters and digits joined by '-'"),
    "locations_name_check": (InvalidInput, "a location needs a name"),
    "locations_timezone_check": (InvalidInput, "unknown time zone: use an IANA name (America/New_York)"),
    "locations_phone_number_check": (InvalidInput, "a location's phone number must be E.164 (+15550100100)"),
    "locations_phone_number_active_key": (
        Conflict, "another active location already answers this phone number"),
    "locations_address_line1_check": (InvalidInput, "an address needs a first line"),
    "locations_city_check": (InvalidInput, "an address needs a city"),
    "locations_country_check": (InvalidInput, "the country is a two-letter ISO code such as US"),
    "locations_region_check": (InvalidInput, "US and Canadian addresses need a two-letter state/province"),
    "locations_postal_code_check": (InvalidInput, "the postal code does not fit the country"),
    "locations_booking_capacity_check": (InvalidInput, "booking capacity cannot be negative"),
    "business_hours_location_id_fkey": (NotFound, "no location with this id"),
    "business_hours_day_of_week_check": (InvalidInput, "day of week is 1 (Monday) to 7 (Sunday)"),
    "business_hours_interval_check": (
        InvalidInput, "opening hours must close after they open, on the same day"),
    "business_hours_no_overlap": (Conflict, "opening intervals of one day may not overlap"),
    "business_hour_exceptions_location_id_fkey": (NotFound, "no location with this id"),
    "business_hour_exceptions_interval_check": (
        InvalidInput, "special hours must close after they open, on the same day"),
    "business_hour_exceptions_no_overlap": (
        Conflict, "this date already has an exception that overlaps (or a closed-day entry)"),
    "services_organization_id_fkey": (NotFound, "no organisation with this id"),
    "services_org_name_key": (Conflict, "this organisation already has a service with this name"),
    "services_name_check": (InvalidInput, "a service needs a name"),
    "services_duration_check": (InvalidInput, "a service lasts between 5 minutes and 12 hours"),
    "services_price_check": (InvalidInput, "a price cannot be negative"),
    "services_currency_check": (InvalidInput, "the currency is a three-letter ISO code such as USD"),
    "providers_location_fkey": (NotFound, "no such location in this organisation"),
    "providers_name_check": (InvalidInput, "a provider needs a name"),
    "provider_services_provider_fkey": (NotFound, "no such provider in this organisation"),
    "provider_services_service_fkey": (NotFound, "no such service in this organisation"),
    "appointments_organization_id_fkey": (NotFound, "no organisation with this id"),
    "appointments_location_fkey": (NotFound, "no such location in this organisation"),
    "appointments_service_fkey": (NotFound, "no such service in this organisation"),
    "appointments_provider_fkey": (NotFound, "no such provider at this location"),
    "appointments_call_id_fkey": (CallNotFound, "no call with this id: create the call first"),
    "appointments_last_call_id_fkey": (CallNotFound, "no call with this id: create the call first"),
    "appointments_confirmation_code_key": (Conflict, "this confirmation code is already in use"),
    "appointments_confirmation_code_check": (
        InvalidInput, "a confirmation code is 6 letters and digits, without 0, O, 1, I or L"),
    "appointments_customer_name_check": (InvalidInput, "the customer's name is required"),
    "appointments_customer_phone_check": (InvalidInput, "the customer's phone number must be E.164"),
    "appointments_time_check": (InvalidInput, "an appointment must end after it starts"),
    "appointments_provider_no_overlap": (Conflict, "the provider already has an appointment then"),
    "knowledge_base_organization_id_fkey": (NotFound, "no organisation with this id"),
    "knowledge_base_location_fkey": (NotFound, "no such location in this organisation"),
    "knowledge_base_title_check": (InvalidInput, "a fact needs a title"),
    "knowledge_base_content_check": (InvalidInput, "a fact needs content"),
    "knowledge_base_topic_check": (InvalidInput, "a topic is lowercase letters and digits joined by - or _"),
    "knowledge_base_tags_check": (InvalidInput, "tags cannot be empty strings"),
    "knowledge_base_priority_check": (InvalidInput, "priority is between 0 and 100"),
    "knowledge_base_active_topic_key": (
        Conflict, "this scope already has an active fact on this topic: deactivate it first"),
    "agent_configs_organization_id_fkey": (NotFound, "no organisation with this id"),
    "agent_configs_location_fkey": (NotFound, "no such location in this organisation"),
    "agent_configs_created_by_fkey": (NotFound, "no user with this id"),
    "agent_configs_version_check": (InvalidInput, "versions start at 1"),
    "agent_configs_instructions_check": (InvalidInput, "an agent config needs instructions"),
    "agent_configs_greeting_check": (InvalidInput, "an agent config needs a greeting"),
    "agent_configs_script_overrides_check": (InvalidInput, "script overrides must be a JSON object"),
    "agent_configs_policies_check": (
        InvalidInput, "policies must be an object of non-negative numbers and an E.164 escalation_phone"),
    "agent_configs_scope_version_key": (Conflict, "this version already exists in this scope"),
    "agent_configs_one_active_key": (Conflict, "another version of this scope is active"),
    "voice_calls_organization_id_fkey": (NotFound, "no organisation with this id"),
    "voice_calls_location_id_fkey": (NotFound, "no location with this id"),
    "voice_calls_agent_config_id_fkey": (NotFound, "no agent config with this id"),
}

_TRANSIENT = (
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
    asyncpg.AdminShutdownError,
    asyncpg.TooManyConnectionsError,
    ConnectionError,
    OSError,
    TimeoutError,
)


def is_transient(exc: BaseException) -> bool:
    """Whether retrying later may succeed (the server is away), as opposed to a rejected row."""
    if isinstance(exc, Unavailable):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = getattr(exc, "sqlstate", "") or ""
        # 08: connection exception, 57P: operator intervention (shutdown), 53: resources
        return sqlstate.startswith(("08", "57P", "53"))
    return isinstance(exc, _TRANSIENT)


def translate(exc: Exception) -> DatabaseError:
    """The DatabaseError for a driver exception."""
    if isinstance(exc, DatabaseError):
        return exc
    if is_transient(exc):
        return Unavailable(f"the database is unavailable: {exc}")
    constraint = getattr(exc, "constraint_name", None)
    if constraint in CONSTRAINTS:
        cls, message = CONSTRAINTS[constraint]
        return cls(f"{message} ({constraint})")
    if isinstance(exc, asyncpg.UniqueViolationError):
        return Conflict(f"{exc.detail or exc}")
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return NotFound(f"{exc.detail or exc}")
    if isinstance(exc, (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)):
        return InvalidInput(str(exc))
    if isinstance(exc, asyncpg.PostgresError):
        return DatabaseError(str(exc))
    raise exc


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Run a block, turning driver errors into ours."""
    try:
        yield
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        raise translate(exc) from exc
