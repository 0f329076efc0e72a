"""Issue 14 item 8: downloads cannot be rendered as pages, and uploads and downloads agree on
what a valid file name is (one function, data_pipeline.files.paths, decides for both)."""
from __future__ import annotations

import io

import pytest

TASKS = "/api/v0/data_pipeline/tasks"


def upload(client, task_id: str, name: str, content: bytes = b"select 1;\n"):
    return client.post(f"{TASKS}/{task_id}/files", data={"file": (io.BytesIO(content), name)},
                       content_type="multipart/form-data")


def test_downloads_are_never_sniffed_or_run_as_a_page(client, new_task):
    task_id = new_task(task_name="downloads")
    page = b"<html><script>fetch('/api/v0/data_pipeline/tasks', {method: 'DELETE'})</script></html>"
    assert upload(client, task_id, "notes.md", page).status_code == 200
    response = client.get(f"{TASKS}/{task_id}/files/notes.md")
    assert response.status_code == 200 and response.data == page
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == "sandbox"
    assert response.headers["Content-Disposition"].startswith("attachment")


@pytest.mark.parametrize("name", ["．．／x.sql", "．．/x.sql", "x／y.sql", "＼x.sql", "ｘ％2e.sql", "．x.sql",
                                  "x.sql\u2028", "x\u0000.sql", "a:b.sql"])
def test_names_a_download_would_refuse_are_refused_at_upload(client, new_task, training_data_dir, name):
    task_id = new_task(task_name="full width")
    response = upload(client, task_id, name)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"]["error_code"] == "INVALID_FILE_PATH"
    assert sorted(p.name for p in (training_data_dir / task_id).iterdir()) == ["data_pipeline.log"]


@pytest.mark.parametrize("name", ["报表_2024.sql", "ｗｉｄｅ.sql", "a b.sql", "x..y.sql"])
def test_every_name_an_upload_accepts_is_listed_and_downloadable(client, new_task, name):
    task_id = new_task(task_name="unicode names")
    stored = upload(client, task_id, name)
    assert stored.status_code == 200, stored.get_data(as_text=True)
    listed = [f for f in client.get(f"{TASKS}/{task_id}/files").get_json()["data"]["files"]
              if f["file_name"] == name]
    assert len(listed) == 1
    download = client.get(listed[0]["download_url"])
    assert download.status_code == 200, download.get_data(as_text=True)
    assert download.data == b"select 1;\n"
