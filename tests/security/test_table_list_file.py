"""Issue 14 item 4: `table_list_file` reads only `.txt` table lists from the project root (where
the guide's examples put tables.txt) and the training data directory, never a dotfile or
anything under a dot-directory; a refusal names the line and the offending name (64 characters
at most), never the file's other lines."""
from __future__ import annotations

import pytest

from config import PROJECT_ROOT

TASKS = "/api/v0/data_pipeline/tasks"
LEAK = "sk-leak-0123456789abcdef"


def refusal(client, table_list_file: str, code: str) -> str:
    response = client.post(TASKS, json={"table_list_file": table_list_file})
    assert response.status_code == 400, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["error_code"] == code and error["invalid_params"] == ["table_list_file"], error
    return response.get_data(as_text=True)


@pytest.fixture
def secrets_on_disk(training_data_dir):
    """Files an attacker would name: a .env, a git config, a list inside a dot-directory."""
    (training_data_dir / ".env").write_text(f"LLM_API_KEY={LEAK}\nDATA_PIPELINE_API_KEY={LEAK}\n")
    (training_data_dir / ".git").mkdir(exist_ok=True)
    (training_data_dir / ".git" / "config").write_text(f"[remote]\n\turl = https://u:{LEAK}@git.example\n")
    (training_data_dir / ".git" / "tables.txt").write_text(f"{LEAK} x\n")
    (training_data_dir / "env.txt").unlink(missing_ok=True)
    (training_data_dir / "env.txt").symlink_to(training_data_dir / ".env")
    return training_data_dir


@pytest.mark.parametrize("name", [".env", "{dir}/.env", ".git/config", "{dir}/.git/config", ".git/tables.txt",
                                  "{dir}/.git/tables.txt", "env.txt", "./.env", "lists/../.env"])
def test_dotfiles_and_dot_directories_are_never_read(client, secrets_on_disk, name):
    text = refusal(client, name.format(dir=secrets_on_disk), "INVALID_FILE_PATH")
    assert LEAK not in text and "LLM_API_KEY" not in text


@pytest.mark.parametrize("name", ["config.py", str(PROJECT_ROOT / "config.py"), "README.md", "unified_api.py"])
def test_only_txt_files_are_read(client, name):
    text = refusal(client, name, "INVALID_FILE_PATH")
    assert "PROJECT_ROOT" not in text and "import" not in text and "from __future__" not in text


def test_txt_files_in_the_projects_subdirectories_are_not_lists(client):
    nested = PROJECT_ROOT / "tests" / "security" / "conftest.py"
    assert nested.is_file()
    refusal(client, str(nested.with_name("nothing.txt")), "INVALID_FILE_PATH")
    refusal(client, "data_pipeline/training_data/../../requirements-dev.txt", "INVALID_FILE_PATH")


def test_a_refusal_names_the_line_and_the_name_cut_to_64_characters(client, training_data_dir):
    long_name = "bad name " + "x" * 200
    (training_data_dir / "mixed.txt").write_text(
        f"bss_company\n# a comment with {LEAK}\nbss_service_area\n{long_name}\nother bad line {LEAK}\n")
    text = refusal(client, "mixed.txt", "INVALID_TABLE_NAME")
    details = client.post(TASKS, json={"table_list_file": "mixed.txt"}).get_json()["error"]["details"]
    assert "第4行" in details and long_name[:64] in details and long_name[:65] not in details
    assert LEAK not in text and "bss_company" not in text and "other bad line" not in text
    assert "第5行" in details  # the other offending lines by number only


def test_a_list_in_the_training_data_directory_still_works(client, training_data_dir):
    (training_data_dir / "lists").mkdir(exist_ok=True)
    (training_data_dir / "lists" / "tables.txt").write_text("bss_company\nbss_service_area\n")
    for name in ("lists/tables.txt", str(training_data_dir / "lists" / "tables.txt")):
        created = client.post(TASKS, json={"table_list_file": name})
        assert created.status_code == 201, created.get_data(as_text=True)
        task_id = created.get_json()["data"]["task_id"]
        assert (training_data_dir / task_id / "table_list.txt").read_text().split() == ["bss_company",
                                                                                         "bss_service_area"]


def test_a_name_too_long_for_the_file_system_is_a_clear_400(client):
    refusal(client, "a" * 1000 + ".txt", "INVALID_FILE_PATH")
    refusal(client, "d/" * 400 + "t.txt", "INVALID_FILE_PATH")
