"""The Debian-packaged schemas fixture (tests/support/debian_schemas.py) gives real, loaded databases."""
from __future__ import annotations

import psycopg
import pytest

from tests.support.debian_schemas import CACHE_DIR, PROJECT_ROOT, SCHEMAS


def _table_count(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace"
                            " where c.relkind in ('r', 'p') and not c.relispartition"
                            " and n.nspname = 'public'").fetchone()[0]


@pytest.mark.parametrize("key", sorted(SCHEMAS))
def test_each_schema_loads_with_all_its_tables(key, debian_schema_db):
    assert _table_count(debian_schema_db(key)) == SCHEMAS[key].tables


def test_zabbix_comes_with_its_real_rows(zabbix_db_url):
    with psycopg.connect(zabbix_db_url) as conn:
        items, mappings, images = conn.execute(
            "select (select count(*) from items), (select count(*) from valuemap_mapping),"
            " (select count(*) from images)").fetchone()
    assert items > 10_000 and mappings > 30_000 and images > 100


def test_the_cache_is_git_ignored():
    ignored = (PROJECT_ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert "/.cache/" in ignored and CACHE_DIR.is_relative_to(PROJECT_ROOT / ".cache")
