"""Alembic migrations of the state database (env.py and versions/)."""
