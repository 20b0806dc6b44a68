"""The admin API and web console (`python -m api`): every request runs under RLS as its API key."""
