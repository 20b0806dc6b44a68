"""Signed webhooks out: the relay and delivery loop of `python -m webhooks` (see README,
"Signed outbound webhooks")."""
