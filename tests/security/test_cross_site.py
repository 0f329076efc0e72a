"""Issue 14 items 7 and 8 (OPTIONS, Bearer): a page on another site, or a rebinding DNS name,
cannot drive the service on a user's machine; the API key's scheme is case-insensitive."""
from __future__ import annotations

import pytest

from config import Settings
from tests.security.conftest import build_app

TASKS = "/api/v0/data_pipeline/tasks"
HEALTH = "/api/v0/health"


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["success"] is False and body["code"] == status and body["error"]["error_code"] == code, body
    return body


def task_count(client) -> int:
    return client.get(TASKS, query_string={"limit": 1}).get_json()["data"]["total"]


# ---- item 7: JSON endpoints take JSON only --------------------------------------------------------

@pytest.mark.parametrize("content_type, data", [
    ("text/plain", '{"task_name": "from another site"}'),
    ("text/plain;charset=UTF-8", '{"task_name": "from another site"}'),
    ("application/x-www-form-urlencoded", '{"task_name": "x"}='),
    ("multipart/form-data; boundary=b", '--b\r\nContent-Disposition: form-data; name="task_name"\r\n\r\nx\r\n--b--\r\n'),
    ("text/plain", ""),
])
def test_json_endpoints_refuse_other_content_types(client, content_type, data):
    before = task_count(client)
    body = assert_error(client.post(TASKS, data=data, headers={"Content-Type": content_type}), 415,
                        "UNSUPPORTED_MEDIA_TYPE")
    assert body["error"]["type"] == "ValidationError" and "application/json" in body["error"]["details"]
    assert task_count(client) == before


def test_a_body_without_a_content_type_is_refused_too(client):
    response = client.post(TASKS, data='{"task_name": "x"}', content_type="")
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_execute_refuses_a_cross_site_form(client, new_task):
    task_id = new_task(task_name="form target")
    response = client.post(f"{TASKS}/{task_id}/execute", data="execution_mode=complete",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert client.get(f"{TASKS}/{task_id}").get_json()["data"]["status"] == "pending"


def test_json_with_a_charset_and_bodyless_posts_still_work(client, new_task):
    created = client.post(TASKS, data='{"task_name": "charset"}',
                          headers={"Content-Type": "application/json; charset=utf-8"})
    assert created.status_code == 201, created.get_data(as_text=True)
    # The clients cancel and delete without a body (and so without a Content-Type).
    task_id = new_task(task_name="bodyless")
    assert client.delete(f"{TASKS}/{task_id}").status_code == 200


# ---- item 7: unsafe methods from another origin -------------------------------------------------

@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://localhost.evil.example",
                                    "http://localhost:9999", "https://localhost"])
def test_unsafe_methods_from_another_origin_are_refused(client, new_task, origin):
    before = task_count(client)
    assert_error(client.post(TASKS, json={"task_name": "x"}, headers={"Origin": origin}), 403, "ORIGIN_NOT_ALLOWED")
    assert task_count(client) == before
    task_id = new_task(task_name="victim")
    assert_error(client.delete(f"{TASKS}/{task_id}", headers={"Origin": origin}), 403, "ORIGIN_NOT_ALLOWED")
    assert client.get(f"{TASKS}/{task_id}").status_code == 200


def test_the_services_own_origin_and_safe_methods_pass(client):
    # The test client's Host is `localhost`: the console served from it posts with that origin.
    created = client.post(TASKS, json={"task_name": "own origin"}, headers={"Origin": "http://localhost"})
    assert created.status_code == 201, created.get_data(as_text=True)
    # Reading is left to the browser's same-origin policy (no CORS headers are ever sent).
    listing = client.get(TASKS, headers={"Origin": "http://evil.example"})
    assert listing.status_code == 200 and "Access-Control-Allow-Origin" not in listing.headers


# ---- item 7: Host headers (DNS rebinding) -------------------------------------------------------

@pytest.mark.parametrize("host", ["evil.example", "evil.example:8084", "127.0.0.1.evil.example", "localhost@evil"])
def test_other_host_headers_are_refused(client, host):
    assert_error(client.get(HEALTH, headers={"Host": host}), 403, "HOST_NOT_ALLOWED")
    assert_error(client.post(TASKS, json={}, headers={"Host": host}), 403, "HOST_NOT_ALLOWED")


@pytest.mark.parametrize("host", ["localhost", "localhost:8084", "127.0.0.1:5000", "[::1]:8084", "LOCALHOST"])
def test_localhost_names_and_the_bind_address_are_allowed(client, host):
    assert client.get(HEALTH, headers={"Host": host}).status_code == 200


def test_allowed_hosts_setting_replaces_the_default(embedded_pg_dir, tmp_path):
    settings = Settings.from_env({"DATA_PIPELINE_ALLOWED_HOSTS": "pipeline.internal, 10.0.0.5"})
    assert settings.allowed_hosts == ("pipeline.internal", "10.0.0.5")
    client = build_app(embedded_pg_dir, tmp_path, allowed_hosts=settings.allowed_hosts,
                       host="0.0.0.0").test_client()
    assert client.get(HEALTH, headers={"Host": "pipeline.internal:8084"}).status_code == 200
    assert client.get(HEALTH, headers={"Host": "10.0.0.5"}).status_code == 200
    assert_error(client.get(HEALTH, headers={"Host": "localhost"}), 403, "HOST_NOT_ALLOWED")
    # Behind its own name, the service's own origin is that name.
    created = client.post(TASKS, json={}, headers={"Host": "pipeline.internal:8084",
                                                    "Origin": "http://pipeline.internal:8084"})
    assert created.status_code == 201, created.get_data(as_text=True)


def test_the_bind_address_is_allowed_by_default(embedded_pg_dir, tmp_path):
    client = build_app(embedded_pg_dir, tmp_path, host="192.0.2.7").test_client()
    assert client.get(HEALTH, headers={"Host": "192.0.2.7:8084"}).status_code == 200
    assert client.get(HEALTH, headers={"Host": "localhost:8084"}).status_code == 200
    assert_error(client.get(HEALTH, headers={"Host": "192.0.2.8:8084"}), 403, "HOST_NOT_ALLOWED")


# ---- item 8: OPTIONS answers JSON; the Bearer scheme is case-insensitive --------------------------

def test_options_answers_the_json_envelope(client):
    response = client.options(TASKS)
    assert response.status_code == 200 and response.mimetype == "application/json"
    body = response.get_json()
    assert body["success"] is True and body["code"] == 200
    assert set(body["data"]["allowed_methods"]) >= {"GET", "POST", "OPTIONS"}
    assert {m.strip() for m in response.headers["Allow"].split(",")} == set(body["data"]["allowed_methods"])
    assert "Access-Control-Allow-Origin" not in response.headers
    assert_error(client.options("/api/v0/no_such_thing"), 404, "NOT_FOUND")


@pytest.fixture(scope="module")
def keyed_client(embedded_pg_dir, tmp_path_factory):
    return build_app(embedded_pg_dir, tmp_path_factory.mktemp("keyed"), api_key="k3y-Secret").test_client()


@pytest.mark.parametrize("header", ["Bearer k3y-Secret", "bearer k3y-Secret", "BEARER k3y-Secret",
                                    "Bearer   k3y-Secret", "bEaReR k3y-Secret "])
def test_the_bearer_scheme_is_case_insensitive(keyed_client, header):
    assert keyed_client.get(TASKS, headers={"Authorization": header}).status_code == 200


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer k3y-secret", "Basic k3y-Secret", "k3y-Secret",
                                    "Bearer k3y-Secret extra", "Bearerk3y-Secret"])
def test_wrong_credentials_are_refused(keyed_client, header):
    response = keyed_client.get(TASKS, headers={"Authorization": header} if header else {})
    assert_error(response, 401, "UNAUTHORIZED")
    assert "k3y-Secret" not in response.get_data(as_text=True)


def test_options_without_the_key_is_json_too(keyed_client):
    response = keyed_client.options(TASKS)
    assert response.mimetype == "application/json" and response.status_code in (200, 401)
