"""The disk full for the task directory: the training data directory is a small tmpfs (a
read-only directory where the test cannot mount one), filled up while tasks use it.

Writes that cannot happen are clear errors (the step fails saying the disk is full; an upload is
refused saying so), never a stack trace; files already there are kept byte for byte; reads keep
working; once space is back the task runs.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.reliability.conftest import TASKS, control, new_task, run_step, running_server, task_dir, upload, wait_until

TMPFS_SIZE = "8m"


class SmallDisk:
    """A tmpfs of TMPFS_SIZE; `fill()` leaves it with no free block, `free()` gives the space back."""

    def __init__(self):
        self.path = Path(tempfile.mkdtemp(prefix="dp-rel-disk-"))
        self.read_only = False
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(self.path)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if mounted.returncode != 0:
            if os.geteuid() == 0:
                shutil.rmtree(self.path)
                pytest.skip("cannot mount a tmpfs here, and as root a read-only directory is still writable")
            self.read_only = True
        self.filler = self.path / "filler.bin"

    def fill(self) -> None:
        if self.read_only:
            for directory in [self.path, *[p for p in self.path.rglob("*") if p.is_dir()]]:
                directory.chmod(0o555)
            return
        with open(self.filler, "ab", buffering=0) as handle:
            for size in (64 * 1024, 512, 1):   # big blocks, then the last partial block, so nothing fits
                try:
                    while handle.write(b"\0" * size):
                        pass
                except OSError:
                    pass

    def free(self) -> None:
        if self.read_only:
            for directory in [self.path, *[p for p in self.path.rglob("*") if p.is_dir()]]:
                directory.chmod(0o755)
            return
        self.filler.unlink(missing_ok=True)

    def remove(self) -> None:
        self.free()
        if not self.read_only:
            subprocess.run(["umount", str(self.path)], check=False)
        shutil.rmtree(self.path, ignore_errors=True)


@pytest.fixture(scope="module")
def disk():
    small = SmallDisk()
    yield small
    small.remove()


@pytest.fixture(scope="module")
def server(tmp_path_factory, embedded_pg_dir, disk):
    root = tmp_path_factory.mktemp("rel-disk")
    with running_server(root, embedded_pg_dir, DATA_PIPELINE_TRAINING_DATA_DIR=str(disk.path / "training_data")) as api:
        yield api
        api.assert_nothing_left_running()


def no_stack_trace(response) -> None:
    assert "Traceback" not in response.text and 'File "' not in response.text, response.text


def test_a_step_on_a_full_disk_fails_saying_so_and_keeps_the_files(server, disk):
    task_id = new_task(server, tables=["bss_company", "bss_service_area"])
    mine = b"-- hand-written\ncreate table bss_company (id varchar(32) primary key);\n"
    assert upload(server, task_id, "bss_company.ddl", mine).status_code == 200
    before = {p.name: p.read_bytes() for p in task_dir(server, task_id).iterdir() if p.is_file()}

    disk.fill()
    try:
        response = server.execute(task_id, execution_mode="step", step_name="ddl_generation")
        assert response.status_code == 202, response.text
        task = server.wait_for(task_id, timeout=60)
        # The run stops where it first has to write (its task_config.json, before the step starts).
        assert task["status"] == "failed" and task["step_status"]["ddl_generation"] in ("pending", "failed"), task
        assert "磁盘空间不足" in task["error_message"], task["error_message"]
        assert "Traceback" not in task["error_message"]
        for path in (server.get(f"{TASKS}/{task_id}"), server.get(f"{TASKS}/{task_id}/files"),
                     server.get(f"{TASKS}/{task_id}/logs")):
            assert path.status_code == 200, path.text
    finally:
        disk.free()
    directory = task_dir(server, task_id)
    kept = {name: data for name, data in before.items() if name != "data_pipeline.log"}
    found = {}
    for name in kept:
        copies = [p.read_bytes() for p in directory.rglob(name) if p.is_file()]
        found[name] = kept[name] if kept[name] in copies else copies
    assert found == kept, "a file that was there before the disk filled up changed or vanished"

    task = run_step(server, task_id, "ddl_generation")
    assert task["step_status"]["ddl_generation"] == "completed", task


def test_disk_filling_up_while_a_step_works(server, disk, tmp_path):
    task_id = new_task(server, tables=["bss_company"])
    release = tmp_path / "release"   # off the small disk: the step goes on once it exists
    control(server, task_id, {"ddl_generation": {"hold": str(release), "write": ["{stem}.ddl", "{stem}_detail.md"]}})
    assert server.execute(task_id, execution_mode="step", step_name="ddl_generation").status_code == 202
    wait_until(lambda: server.task(task_id)["step_status"]["ddl_generation"] == "running", what="step running")
    disk.fill()
    try:
        release.write_text("go\n")
        task = server.wait_for(task_id, timeout=60)
    finally:
        disk.free()
    assert task["status"] == "failed" and task["step_status"]["ddl_generation"] == "failed", task
    assert "磁盘空间不足" in task["error_message"], task["error_message"]


def test_uploads_and_creates_on_a_full_disk_are_clear_errors(server, disk):
    task_id = new_task(server, tables=["bss_company"])
    original = b'[{"question": "q", "sql": "SELECT 1"}]'
    name = "qs_mine_20240101_000000_pair.json"
    assert upload(server, task_id, name, original).status_code == 200

    disk.fill()
    try:
        replaced = upload(server, task_id, name, b'[{"question": "q2", "sql": "SELECT 2"}]' + b" " * 200_000)
        no_stack_trace(replaced)
        assert replaced.status_code == 507, replaced.text
        assert replaced.json()["error"]["error_code"] == "INSUFFICIENT_STORAGE"
        assert (task_dir(server, task_id) / name).read_bytes() == original

        listed = server.post(f"{TASKS}/{task_id}/table-list",
                             json={"table_names": ["bss_company", "bss_service_area"]})
        no_stack_trace(listed)
        assert listed.status_code == 507, listed.text
        assert (task_dir(server, task_id) / "table_list.txt").read_text(encoding="utf-8").split() == ["bss_company"]

        created = server.post(TASKS, json={"task_name": "磁盘已满"})
        no_stack_trace(created)
        assert created.status_code == 507, created.text
        assert "磁盘空间不足" in created.json()["error"]["details"]
        ghosts = server.post(f"{TASKS}/query", json={"task_name": "磁盘已满"}).json()["data"]["pagination"]["total"]
        assert ghosts == 0, "a create that failed left a task behind (a retry would make two)"
    finally:
        disk.free()
    assert upload(server, task_id, name, original + b"\n").status_code == 200
