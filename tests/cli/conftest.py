from tests.api.conftest import sqlite_server
from tests.support.server import postgres_database_url

__all__ = ["postgres_database_url", "sqlite_server"]
