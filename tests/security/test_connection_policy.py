"""Issue 14 items 1 and 2: which servers a caller's db_connection may reach, and which libpq
options it may carry — the service's own store is never a target, DATA_PIPELINE_ALLOWED_DB_HOSTS
refuses everything else before connecting, only a few URL parameters pass, nothing is taken from the
service's password file or PG* environment, and a failed connection tells nothing about the port."""
from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from data_pipeline.errors import DatabaseError
from tests.conftest import DatabaseFactory
from tests.support.api_server import free_port
from tests.support.tcp_proxy import TcpProxy
from tests.support.security_apps import TABLE_DDL, TABLES, TASKS, SilentServer, build_app, error_of, socket_dir


@pytest.fixture(scope="module")
def embedded_app(embedded_pg_dir, tmp_path_factory):
    """The service on its default settings: the store and the demo database on the embedded server."""
    return build_app(embedded_pg_dir, tmp_path_factory.mktemp("conn-embedded"))


@pytest.fixture(scope="module")
def tcp_store_app(embedded_pg_dir, local_store_url, tmp_path_factory):
    """The service with its store on the machine's server, reached over TCP."""
    return build_app(embedded_pg_dir, tmp_path_factory.mktemp("conn-tcp"), db_url=local_store_url)


@pytest.fixture(scope="module")
def business_db(local_pg_admin_url):
    factory = DatabaseFactory(local_pg_admin_url, "sec_conn_biz")
    yield factory("create table public.shop (id integer primary key, name text); insert into shop values (1, 'a');")
    factory.drop_all()


@pytest.fixture
def silent_server():
    server = SilentServer()
    yield server
    server.close()


# ---- item 1: the store is never a target -------------------------------------------------------------

def embedded_forms(embedded_pg_dir, tmp_path) -> list[str]:
    """The embedded store database, written every way libpq accepts."""
    directory = socket_dir(store_url_of(embedded_pg_dir))
    link = tmp_path / "sock-link"
    link.symlink_to(directory)
    return [
        f"postgresql://postgres@/data_pipeline?host={directory}",
        f"postgresql://postgres@{quote(directory, safe='')}/data_pipeline",
        f"postgresql://postgres@{quote(directory, safe='')}:5432/data_pipeline",
        f"postgresql://postgres@/data_pipeline?host={directory}/",
        f"postgresql://postgres@/data_pipeline?host={link}",
        f"postgresql:///data_pipeline?host={directory}&user=postgres",
        f"postgresql://postgres@/postgres?host={directory}&dbname=data_pipeline",
        f"postgresql://other@127.0.0.1:1,{quote(directory, safe='')}/data_pipeline",
    ]


def store_url_of(embedded_pg_dir) -> str:
    from data_pipeline.db import embedded_pg

    return embedded_pg.store_url(embedded_pg_dir)


def test_the_embedded_store_is_refused_in_every_form(embedded_app, embedded_pg_dir, tmp_path):
    client = embedded_app.test_client()
    for url in embedded_forms(embedded_pg_dir, tmp_path):
        for path, body in ((TABLE_DDL, {"table": "public.dp_tasks", "type": "md"}), (TABLES, {})):
            error = error_of(client.post(path, json={**body, "db_connection": url}), 403, "CONNECTION_NOT_ALLOWED")
            assert error["invalid_params"] == ["db_connection"], url
        error_of(client.post(TASKS, json={"db_connection": url}), 403, "CONNECTION_NOT_ALLOWED")


def test_the_store_reached_through_a_forwarded_port_is_refused(embedded_app, embedded_pg_dir, demo_db_url):
    client = embedded_app.test_client()
    with TcpProxy(f"{socket_dir(store_url_of(embedded_pg_dir))}/.s.PGSQL.5432") as forwarder:
        via_proxy = f"postgresql://postgres@127.0.0.1:{forwarder.port}"
        error_of(client.post(TABLE_DDL, json={"table": "public.dp_tasks",
                                              "db_connection": f"{via_proxy}/data_pipeline"}),
                 403, "CONNECTION_NOT_ALLOWED")
        # The same way to the demo database is an ordinary business connection.
        assert client.post(TABLES, json={"db_connection": f"{via_proxy}/highway_db"}).status_code == 200


def test_the_demo_database_on_the_same_server_stays_reachable(embedded_app, demo_db_url):
    client = embedded_app.test_client()
    default = client.post(TABLES, json={})
    assert default.status_code == 200 and default.get_json()["data"]["total"] == 7
    explicit = client.post(TABLES, json={"db_connection": demo_db_url})
    assert explicit.status_code == 200, explicit.get_data(as_text=True)
    assert explicit.get_json()["data"]["db_connection_info"] == {"database": "highway_db"}


def test_a_tcp_store_is_refused_by_every_local_name(tcp_store_app, local_store_url, business_db):
    client = tcp_store_app.test_client()
    store = local_store_url.rsplit("/", 1)[1]
    interfaces = [f"[{a}]" if ":" in a else a for a in interface_addresses()]
    for host in ("127.0.0.1", "localhost", "[::1]", "127.0.0.2", "0.0.0.0", socket.gethostname(),
                 "%2Fvar%2Frun%2Fpostgresql", *interfaces):
        url = f"postgresql://postgres@{host}:5432/{store}"
        error_of(client.post(TABLES, json={"db_connection": url}), 403, "CONNECTION_NOT_ALLOWED")
    error_of(client.post(TABLES, json={"db_connection": f"postgresql://postgres@/{store}?port=5432"}), 403,
             "CONNECTION_NOT_ALLOWED")
    # Another database of the same server is an ordinary business database.
    assert client.post(TABLES, json={"db_connection": business_db}).status_code == 200


def interface_addresses() -> list[str]:
    """This machine's own addresses (a server listening on `*` answers on every one)."""
    import psutil

    return [a.address for addresses in psutil.net_if_addrs().values() for a in addresses
            if a.family in (socket.AF_INET, socket.AF_INET6) and "%" not in a.address]


def test_allowed_db_hosts_refuses_others_before_connecting(embedded_pg_dir, tmp_path, silent_server, business_db):
    app = build_app(embedded_pg_dir, tmp_path / "app", allowed_db_hosts=("10.0.0.0/8", "db.example.com"))
    client = app.test_client()
    url = f"postgresql://u:pw@127.0.0.1:{silent_server.port}/biz"
    error = error_of(client.post(TABLES, json={"db_connection": url}), 403, "CONNECTION_NOT_ALLOWED")
    assert "DATA_PIPELINE_ALLOWED_DB_HOSTS" in error["details"]
    error_of(client.post(TASKS, json={"db_connection": url}), 403, "CONNECTION_NOT_ALLOWED")
    assert silent_server.accepted == 0
    # Names the list holds pass (this one is unreachable, so the task is created and fails later).
    assert client.post(TASKS, json={"db_connection": "postgresql://u@db.example.com/x"}).status_code == 201

    allowed = build_app(embedded_pg_dir, tmp_path / "allowed", allowed_db_hosts=("127.0.0.0/8",)).test_client()
    assert allowed.post(TABLES, json={"db_connection": business_db}).status_code == 200


def test_allowed_db_hosts_judges_the_addresses_the_connection_is_pinned_to():
    """A name is checked by what `resolve` found and pinned, not by a second lookup that a
    rebinding DNS server could answer with an allowed address."""
    from data_pipeline.db.policy import AllowedHosts, Endpoint, Target

    allowed = AllowedHosts(("127.0.0.0/8", "::1/128"))
    assert allowed.refused_hosts(Target(("localhost",), (Endpoint("tcp", "127.0.0.1", 5432),), "db",
                                        pinned=("127.0.0.1",), addresses=(("127.0.0.1",),))) == []
    # "localhost" would resolve to an allowed address now; it was pinned to 10.0.0.5.
    rebound = Target(("localhost",), (Endpoint("tcp", "10.0.0.5", 5432),), "db", pinned=("10.0.0.5",),
                     addresses=(("10.0.0.5",),))
    assert allowed.refused_hosts(rebound) == ["localhost"]


# ---- item 2: the URL's parameters -------------------------------------------------------------------

@pytest.mark.parametrize("query, name", [
    ("passfile=/root/.pgpass", "passfile"),
    ("options=-c%20session_preload_libraries%3D/etc/passwd", "options"),
    ("options=-c%20search_path%3Dpublic%20-c%20work_mem%3D1TB", "options"),
    ("sslkey=/etc/ssl/private/key.pem", "sslkey"),
    ("sslrootcert=/etc/passwd", "sslrootcert"),
    ("sslpassword=x", "sslpassword"),
    ("service=prod", "service"),
    ("hostaddr=10.0.0.1", "hostaddr"),
    ("krbsrvname=x", "krbsrvname"),
    ("replication=database", "replication"),
    ("no_such_option=1", "no_such_option"),
    # libpq reads on past a "#" (no fragment in its URIs): the options there are libpq's too
    ("sslmode=disable#&sslkey=/etc/ssl/private/key.pem", "#"),
    ("application_name=x#&service=prod", "#"),
])
def test_only_allowed_url_parameters(embedded_app, business_db, query, name):
    client = embedded_app.test_client()
    url = f"{business_db}?{query}"
    for path, body in ((TABLES, {}), (TABLE_DDL, {"table": "shop"}), (TASKS, {})):
        error = error_of(client.post(path, json={**body, "db_connection": url}), 400, "INVALID_DB_CONNECTION")
        assert error["invalid_params"] == ["db_connection"] and name in error["details"]


def test_allowed_url_parameters_work(embedded_app, business_db):
    url = (f"{business_db}?sslmode=disable&connect_timeout=3&application_name=sec_conn_probe"
           "&target_session_attrs=any&options=-c%20search_path%3Dpublic")
    response = embedded_app.test_client().post(TABLE_DDL, json={"table": "shop", "db_connection": url})
    assert response.status_code == 200, response.get_data(as_text=True)


def test_the_service_environment_is_not_read(business_db, monkeypatch, tmp_path):
    from data_pipeline.db.connection import NO_PASSWORD_FILE, connect, connection_params

    passfile = tmp_path / "pgpass"
    passfile.write_text("*:*:*:*:from-the-service-file\n")
    passfile.chmod(0o600)
    for variable, value in {"PGPASSFILE": str(passfile), "PGSSLMODE": "require", "PGOPTIONS": "-c search_path=evil",
                            "PGAPPNAME": "from_env", "PGPASSWORD": "from-env-password",
                            "PGTARGETSESSIONATTRS": "standby"}.items():
        monkeypatch.setenv(variable, value)
    params = connection_params(business_db)
    assert params["passfile"] == NO_PASSWORD_FILE and not os.path.exists(NO_PASSWORD_FILE)
    assert params["password"] == "" and "evil" not in params["options"]
    assert params["keepalives"] == "1" and int(params["tcp_user_timeout"]) > 0  # a vanished server breaks the read
    # A real connection: with the environment read, it would need SSL (refused by this server).
    with connect(business_db) as conn:
        assert conn.execute("show search_path").fetchone()[0] == '"$user", public'
        assert conn.execute("show application_name").fetchone()[0] == "data_pipeline"
        assert conn.execute("show statement_timeout").fetchone()[0] == "30s"


@pytest.fixture(scope="module")
def password_server():
    """A server with password authentication (the machine's server trusts everyone)."""
    from tests.support.pg_cluster import PostgresCluster, find_bin_dir

    if find_bin_dir() is None:
        pytest.skip("PostgreSQL server binaries not found; set DATA_PIPELINE_TEST_PG_BIN")
    # Outside pytest's private (0700) temporary root: the server runs as another system user.
    cluster = PostgresCluster.create(Path(tempfile.mkdtemp(prefix="sec-conn-pg-")))
    yield cluster
    cluster.destroy()


def test_no_password_file_is_read(password_server, monkeypatch, tmp_path):
    from data_pipeline.db.connection import connect

    url = password_server.add_database("sec_conn_pw", user="sec_conn_owner", password="Pw-sec-conn-0451")
    passfile = tmp_path / "pgpass"
    passfile.write_text("*:*:*:sec_conn_owner:Pw-sec-conn-0451\n")
    passfile.chmod(0o600)
    without_password = url.replace(":Pw-sec-conn-0451@", "@")
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    with psycopg.connect(without_password):  # libpq on its own takes the password from the file
        pass
    with pytest.raises(DatabaseError):
        connect(without_password)
    with connect(url):  # the URL's own password works
        pass


# ---- item 2: errors say "could not connect", never why ----------------------------------------------

def test_connection_errors_do_not_tell_ports_apart(embedded_app, silent_server, local_pg_admin_url):
    client = embedded_app.test_client()
    closed = free_port()
    targets = {
        "closed": f"postgresql://u:Secret-pw-1@127.0.0.1:{closed}/somedb?connect_timeout=2",
        "silent": f"postgresql://u:Secret-pw-1@127.0.0.1:{silent_server.port}/somedb?connect_timeout=2",
        "postgres": "postgresql://u:Secret-pw-1@127.0.0.1:5432/somedb?connect_timeout=2",
    }
    details = {}
    for name, url in targets.items():
        error = error_of(client.post(TABLES, json={"db_connection": url}), 500, "DATABASE_CONNECTION_ERROR")
        port = url.split(":")[3].split("/")[0]
        details[name] = error["details"].replace(port, "PORT")
        assert f"could not connect to 127.0.0.1:{port}" in error["details"]
        assert "Secret-pw-1" not in error["details"]
    assert len(set(details.values())) == 1, details


def test_a_database_that_does_not_exist(embedded_app, local_pg_admin_url):
    url = local_pg_admin_url.rsplit("/", 1)[0] + "/sec_conn_no_such_database"
    client = embedded_app.test_client()
    for path, body in ((TABLES, {}), (TABLE_DDL, {"table": "shop"})):
        error = error_of(client.post(path, json={**body, "db_connection": url}), 500, "DATABASE_CONNECTION_ERROR")
        assert "could not connect to 127.0.0.1:5432" in error["details"]


@pytest.mark.parametrize("url", ["postgresql://u:pw@[::1/db", "postgresql://u:pw@[bad", "postgresql://u@h:99999/db",
                                 "postgresql://u@h:x/db", "postgresql://u@%zz/db",
                                 # libpq's password is "x?sslmode=a", urllib's (what masking hides) "x"
                                 "postgresql://u:x?sslmode=a@h/db"])
def test_malformed_urls_are_refused(embedded_app, url):
    client = embedded_app.test_client()
    for path, body in ((TABLES, {}), (TABLE_DDL, {"table": "shop"}), (TASKS, {})):
        error = error_of(client.post(path, json={**body, "db_connection": url}), 400, "INVALID_DB_CONNECTION")
        assert error["invalid_params"] == ["db_connection"]


def test_the_database_name_shown_is_the_one_libpq_connects_to():
    from data_pipeline.db.connection import database_name

    assert database_name("postgresql://u@h/shown?dbname=reached") == "reached"
    assert database_name("postgresql:///highway_db?host=/tmp") == "highway_db"
    assert database_name("postgresql://u@h?dbname=only_query") == "only_query"
