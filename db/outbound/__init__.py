"""Outbound webhooks: the outbox, the endpoints it is delivered to, and the delivery records."""
