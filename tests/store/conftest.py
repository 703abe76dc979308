from tests.store.databases import database, empty_database, postgres_url

__all__ = ["database", "empty_database", "postgres_url"]
