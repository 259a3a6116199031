"""The tracker's database: tables, engine and sessions, loading, migrations."""
