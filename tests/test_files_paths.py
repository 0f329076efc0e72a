"""Hostile file names against a real server: nothing outside the task directory ever comes back.

Requests are sent byte for byte with http.client (a normal client would clean `..` up first).
A secret file is planted next to the task directory, one level above, and in a sibling task;
symlinks inside the task directory point at them. Every response is checked for the secret.
"""
from __future__ import annotations

import http.client
import json
import os
import uuid

import pytest

from data_pipeline.errors import NotFoundError, ValidationError
from data_pipeline.files.paths import check_relative_name, resolve_task_file

SECRET = f"top-secret-{uuid.uuid4().hex}"
FILES = "/api/v0/data_pipeline/tasks"


@pytest.fixture(scope="module")
def planted(embedded_api):
    api = embedded_api
    task_id = api.create_task(task_name="路径安全")
    sibling = api.create_task(task_name="隔壁任务")
    root = api.training_data_dir
    directory = root / task_id
    (directory / "vector_bak").mkdir()
    (directory / "file_bak_20250101_000000").mkdir()
    (directory / "table_list.txt").write_text("bss_company\n", encoding="utf-8")
    (directory / "vector_bak" / "langchain_pg_collection_20250101_000000.csv").write_text("uuid,name\n", encoding="utf-8")
    (directory / "file_bak_20250101_000000" / "t.ddl").write_text("create table t (id int);\n", encoding="utf-8")
    (directory / "说明.md").write_text("# 说明\n", encoding="utf-8")
    for place in (root / "secret.txt", root.parent / "secret.txt", root / sibling / "secret.txt"):
        place.write_text(SECRET, encoding="utf-8")
    os.symlink("../secret.txt", directory / "link_out")
    os.symlink(str(root / "secret.txt"), directory / "link_abs")
    os.symlink("..", directory / "link_dir")
    os.symlink("vector_bak", directory / "link_inside")
    return api, task_id, sibling


def raw_get(api, path: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", api.port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


INVALID = (400, "INVALID_FILE_PATH")
MISSING = (404, "FILE_NOT_FOUND")
# (what follows /files/ in the raw request line, expected status and error code)
HOSTILE_PATHS = [
    ("../secret.txt", INVALID),
    ("../../secret.txt", INVALID),
    ("..%2fsecret.txt", INVALID),
    ("%2e%2e%2fsecret.txt", INVALID),
    ("%2E%2E%2F%2E%2E%2Fsecret.txt", INVALID),
    ("%2e%2e/%2e%2e/secret.txt", INVALID),
    ("%252e%252e%252fsecret.txt", INVALID),             # double encoding
    ("%25252e%25252e%25252fsecret.txt", INVALID),       # triple encoding
    ("..%5csecret.txt", INVALID),                       # backslash
    ("..%5c..%5csecret.txt", INVALID),
    ("..\\secret.txt", INVALID),
    ("%2fetc%2fpasswd", INVALID),                       # absolute
    ("%2F{root}%2Fsecret.txt", INVALID),
    ("C:%5cWindows%5cwin.ini", INVALID),
    ("C:/secret.txt", INVALID),
    ("table_list.txt%00.json", INVALID),                # NUL byte
    ("%00", INVALID),
    ("secret.txt%0a", (404, "NOT_FOUND")),              # a line break: no route matches it
    ("vector_bak/../../secret.txt", INVALID),
    ("vector_bak/%2e%2e/%2e%2e/secret.txt", INVALID),
    ("vector_bak%2f..%2f..%2fsecret.txt", INVALID),
    ("./table_list.txt", INVALID),
    ("vector_bak/./langchain_pg_collection_20250101_000000.csv", INVALID),
    ("link_out", INVALID),                              # symlink to ../secret.txt
    ("link_abs", INVALID),                              # symlink to an absolute path outside
    ("link_dir/secret.txt", INVALID),                   # directory symlink pointing up
    ("link_dir/{sibling}/secret.txt", INVALID),
    ("../{sibling}/secret.txt", INVALID),               # a sibling task
    ("%EF%BC%8E%EF%BC%8E/secret.txt", INVALID),         # fullwidth dots (NFKC "..")
    ("%EF%BC%8E%EF%BC%8E%EF%BC%8Fsecret.txt", INVALID),
    ("%c0%ae%c0%ae/secret.txt", MISSING),               # overlong UTF-8: decodes to U+FFFD, harmless
    ("a" * 2000, INVALID),
    ("/etc/passwd", INVALID),                           # .../files//etc/passwd
    ("//etc/passwd", (404, "NOT_FOUND")),               # three slashes: no route matches
    ("vector_bak//langchain_pg_collection_20250101_000000.csv", INVALID),  # empty segment
    ("vector_bak", MISSING),                            # a directory is not a file
    ("no_such_file.json", MISSING),
    ("link_inside/langchain_pg_collection_20250101_000000.csv", (200, None)),  # symlink staying inside
    ("table_list.txt", (200, None)),
    ("vector_bak/langchain_pg_collection_20250101_000000.csv", (200, None)),
    ("file_bak_20250101_000000/t.ddl", (200, None)),
    ("%E8%AF%B4%E6%98%8E.md", (200, None)),
]


@pytest.mark.parametrize("suffix, expected", HOSTILE_PATHS, ids=[p[:40] for p, _ in HOSTILE_PATHS])
def test_hostile_download_paths(planted, suffix, expected):
    api, task_id, sibling = planted
    suffix = suffix.format(root=str(api.training_data_dir).strip("/").replace("/", "%2F"), sibling=sibling)
    status, body = raw_get(api, f"{FILES}/{task_id}/files/{suffix}")
    assert SECRET.encode() not in body
    assert status == expected[0], body[:300]
    if expected[1]:
        error = json.loads(body)
        assert error["success"] is False and error["error"]["error_code"] == expected[1]
        assert b"Traceback" not in body


@pytest.mark.parametrize("task_part, code", [
    ("..", "TASK_NOT_FOUND"),
    ("%2e%2e", "TASK_NOT_FOUND"),
    ("task_20250101_000000", "TASK_NOT_FOUND"),
    ("..%2f..%2f", "NOT_FOUND"),
])
def test_hostile_task_ids(planted, task_part, code):
    api, _, _ = planted
    status, body = raw_get(api, f"{FILES}/{task_part}/files/secret.txt")
    assert status == 404 and json.loads(body)["error"]["error_code"] == code
    assert SECRET.encode() not in body


HOSTILE_UPLOAD_NAMES = ["../evil.ddl", "..\\evil.ddl", "/tmp/evil.ddl", "vector_bak/evil.ddl", "C:\\fakepath\\evil.ddl",
                        ".evil.ddl", "evil.ddl\x00.txt", "evil\n.ddl", "../../secret.txt"]


@pytest.mark.parametrize("filename", HOSTILE_UPLOAD_NAMES)
def test_hostile_upload_names_write_nothing(planted, filename):
    api, task_id, _ = planted
    before = sorted(p for p in api.training_data_dir.parent.rglob("*") if "evil" in p.name)
    response = api.post(f"{FILES}/{task_id}/files", files={"file": (filename, b"create table evil (id int);\n")})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["error_code"] in ("INVALID_FILE_PATH", "INVALID_FILE")
    assert sorted(p for p in api.training_data_dir.parent.rglob("*") if "evil" in p.name) == before == []
    assert (api.training_data_dir / "secret.txt").read_text(encoding="utf-8") == SECRET


def test_listing_shows_no_symlink_and_no_secret(planted):
    api, task_id, _ = planted
    response = api.get(f"{FILES}/{task_id}/files")
    assert SECRET not in response.text
    names = [f["file_name"] for f in response.json()["data"]["files"]]
    assert not any(name.startswith("link_") for name in names)
    assert "vector_bak/langchain_pg_collection_20250101_000000.csv" in names


def test_resolution_rules_without_http(tmp_path):
    directory = tmp_path / "task"
    (directory / "sub").mkdir(parents=True)
    (directory / "sub" / "a.txt").write_text("a", encoding="utf-8")
    assert resolve_task_file(directory, "sub/a.txt") == (directory / "sub" / "a.txt").resolve()
    assert check_relative_name("sub/a.txt") == ["sub", "a.txt"]
    for name in ("", None, 5, "a/", "/a", "a//b", "..", "%2e%2e", "%ZZ%c0%ae", "x\x7f", "\u2024\u2024/x"):
        with pytest.raises(ValidationError) as caught:
            resolve_task_file(directory, name)
        assert caught.value.error_code == "INVALID_FILE_PATH"
    with pytest.raises(NotFoundError) as missing:
        resolve_task_file(directory, "sub/b.txt")
    assert missing.value.error_code == "FILE_NOT_FOUND"
    with pytest.raises(NotFoundError):
        resolve_task_file(tmp_path / "no_task", "a.txt")
