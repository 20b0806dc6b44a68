import pytest

from db.calls import calls

pytestmark = pytest.mark.db

async def test_clone_has_schema(conn):
    call = await calls.start_call(conn, session_id="RM_1", room_name="r")
    assert call.status == "pending"
