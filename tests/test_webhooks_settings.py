"""The webhook service's settings: the key pairs a delivery may be signed with."""

from __future__ import annotations

import pytest

from webhooks.settings import DEFAULT_PORT, Settings


def test_defaults_match_livekit_server_dev(monkeypatch):
    for name in ("LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "WEBHOOK_KEYS", "WEBHOOK_PORT"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)
    assert settings.key_pairs() == {"devkey": "secret"}
    assert (settings.webhook_host, settings.webhook_port) == ("127.0.0.1", DEFAULT_PORT)
    assert settings.webhook_max_body_bytes == 1024 * 1024 and settings.migrate_on_start


def test_rotation_keys_are_accepted_beside_the_main_pair(monkeypatch):
    monkeypatch.setenv("LIVEKIT_API_KEY", "APInew")
    monkeypatch.setenv("LIVEKIT_API_SECRET", "new-secret")
    monkeypatch.setenv("WEBHOOK_KEYS", " APIold:old-secret , APIolder:sec:ret,")
    assert Settings(_env_file=None).key_pairs() == {
        "APInew": "new-secret", "APIold": "old-secret", "APIolder": "sec:ret"}


@pytest.mark.parametrize("keys", ["APIold", "APIold:", ":secret", "devkey:another-secret"])
def test_a_malformed_or_contradicting_key_pair_is_refused(monkeypatch, keys):
    monkeypatch.delenv("LIVEKIT_API_KEY", raising=False)
    monkeypatch.delenv("LIVEKIT_API_SECRET", raising=False)
    monkeypatch.setenv("WEBHOOK_KEYS", keys)
    with pytest.raises(ValueError, match="WEBHOOK_KEYS"):
        Settings(_env_file=None).key_pairs()


def test_secrets_do_not_show_in_the_settings_repr(monkeypatch):
    monkeypatch.setenv("LIVEKIT_API_SECRET", "s3cr3t-value")
    monkeypatch.setenv("WEBHOOK_KEYS", "APIold:old-s3cr3t")
    shown = repr(Settings(_env_file=None))
    assert "s3cr3t-value" not in shown and "old-s3cr3t" not in shown
