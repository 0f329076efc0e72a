"""The web console in a real headless Chromium (Debian `chromium` + `chromium-driver`, driven by
selenium) against a real server with an API key.

Screenshots of the main states go to $DATA_PIPELINE_SCREENSHOTS_DIR when it is set (those of
docs/console.md, in data_pipeline/console/screenshots/, were made that way), else to the test's
temporary directory.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.support.console_support import DEMO_TABLES, require_routes, stand_ins_for_missing_steps, write_control

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (requirements-dev.txt)")
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1360,900", "--lang=zh-CN")
BROWSER_TABLES = DEMO_TABLES[:4]


@pytest.fixture(scope="module")
def server(keyed_api):
    return keyed_api


@pytest.fixture(scope="module")
def downloads(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(tmp_path_factory, downloads):
    if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
        pytest.skip("chromium / chromedriver not installed (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    directory = Path(os.environ.get("DATA_PIPELINE_SCREENSHOTS_DIR") or tmp_path_factory.mktemp("screenshots"))
    directory.mkdir(parents=True, exist_ok=True)

    def shoot(driver, name: str, focus: str | None = None) -> Path:
        """A screenshot of the viewport (toasts removed), scrolled to `focus` if given."""
        driver.execute_script("document.querySelectorAll('.toast').forEach((t) => t.remove())")
        if focus:
            driver.execute_script("document.querySelector(arguments[0]).scrollIntoView();"
                                  "window.scrollBy(0, -70)", focus)
        path = directory / f"{name}.png"
        driver.save_screenshot(str(path))
        return path
    return shoot


def wait(driver, condition, timeout: float = 20, message: str = ""):
    # The live view re-renders while it polls: an element read a moment ago may be replaced.
    return WebDriverWait(driver, timeout, poll_frequency=0.1,
                         ignored_exceptions=(StaleElementReferenceException, NoSuchElementException)
                         ).until(condition, message)


def find(driver, selector: str):
    return driver.find_element(By.CSS_SELECTOR, selector)


def visible(driver, selector: str) -> bool:
    elements = driver.find_elements(By.CSS_SELECTOR, selector)
    return bool(elements) and elements[0].is_displayed()


def task_status(driver) -> str:
    return find(driver, "#task-status").get_attribute("data-status") or ""


def open_console(driver, server) -> None:
    driver.get(server.url + "/")
    wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")


def sign_in(driver, api_key: str) -> None:
    key = find(driver, "#api-key")
    key.clear()
    key.send_keys(api_key)
    find(driver, "#api-key-form button").click()
    wait(driver, lambda d: not visible(d, "#auth-banner"))


def open_task(driver, task_id: str) -> None:
    driver.execute_script("location.hash = arguments[0]", f"#/tasks/{task_id}")
    wait(driver, lambda d: find(d, "#task-id").text == task_id and task_status(d) != "")


def confirm(driver) -> None:
    wait(driver, lambda d: visible(d, "#confirm-ok"))
    find(driver, "#confirm-ok").click()
    wait(driver, lambda d: not visible(d, "#modal"))


def script_errors(driver) -> list[str]:
    """Errors of the page's own code (failed requests are the API's answers, checked elsewhere)."""
    return [entry["message"] for entry in driver.get_log("browser")
            if entry["level"] == "SEVERE" and entry.get("source") != "network"]


def open_create_form(browser, task_name: str) -> None:
    """The create form opened and filled as the guide's example task, under `task_name`."""
    find(browser, "#new-task-btn").click()
    wait(browser, lambda d: visible(d, "#create-form"))
    find(browser, "#f-task-name").send_keys(task_name)
    find(browser, "#f-business-context").send_keys("高速公路服务区管理系统")
    find(browser, "#f-db-name").send_keys("highway_db")


def test_key_create_step_mode_live_progress_cancel_and_delete(browser, server, shots):
    open_console(browser, server)
    wait(browser, lambda d: visible(d, "#auth-banner"), message="a server with an API key must ask for it")
    sign_in(browser, server.api_key)
    wait(browser, lambda d: "共" in find(d, "#page-info").text)

    open_create_form(browser, "控制台单步任务")
    find(browser, "input[name=enable_llm_repair]").click()
    find(browser, "input[name=validate_by_execution]").click()
    find(browser, "#f-truncate").click()
    assert find(browser, "#f-backup").is_selected() and not find(browser, "#f-backup").is_enabled()
    shots(browser, "02_create_task")
    find(browser, "#create-submit").click()
    wait(browser, lambda d: d.current_url.split("#")[-1].startswith("/tasks/task_"))
    task_id = browser.current_url.split("#/tasks/")[-1]
    wait(browser, lambda d: find(d, "#task-id").text == task_id and task_status(d) == "pending")
    parameters = server.task(task_id)["parameters"]
    assert parameters["task_name"] == "控制台单步任务" and parameters["db_name"] == "highway_db"
    assert parameters["enable_llm_repair"] is False and parameters["truncate_vector_tables"] is True
    assert parameters["backup_vector_tables"] is True and parameters["enable_sql_validation"] is True
    assert parameters["validate_by_execution"] is False

    server.set_table_list(task_id, ["bss_company", "bss_service_area"])
    write_control(server, task_id, {"ddl_generation": {"sleep": 30}})
    Select(find(browser, "#exec-mode")).select_by_value("step")
    Select(find(browser, "#exec-step")).select_by_value("ddl_generation")
    find(browser, "#execute-btn").click()
    wait(browser, lambda d: find(d, "#step-ddl_generation").get_attribute("data-status") == "running"
         and "ticks" in find(d, "#step-ddl_generation .step-progress-text").text, timeout=30)
    first = find(browser, "#step-ddl_generation .step-progress-text").text
    wait(browser, lambda d: find(d, "#step-ddl_generation .step-progress-text").text != first,
         message="the progress of the running step must advance while polling")
    assert task_status(browser) == "in_progress" and not find(browser, "#execute-btn").is_enabled()
    assert "ddl_generation" in find(browser, "#overall-text").text
    shots(browser, "03_running_step")
    execution = server.get(f"/api/v0/data_pipeline/tasks/{task_id}/executions").json()["data"]["executions"][0]
    assert execution["execution_mode"] == "step" and execution["step_name"] == "ddl_generation"
    assert execution["options"]["truncate_vector_tables"] is True  # the task's flags preset the checkboxes

    find(browser, "#cancel-btn").click()
    confirm(browser)
    wait(browser, lambda d: task_status(d) == "cancelled", timeout=30)
    wait(browser, lambda d: find(d, "#step-ddl_generation").get_attribute("data-status") == "cancelled")
    assert visible(browser, "#task-error") and server.task(task_id)["status"] == "cancelled"

    write_control(server, task_id, {"ddl_generation": {"fail": "模拟失败"}})
    find(browser, "#execute-btn").click()
    wait(browser, lambda d: task_status(d) == "failed", timeout=30)
    wait(browser, lambda d: "[STEP_FAILED]" in find(d, "#task-error").text and "模拟失败" in find(d, "#task-error").text)

    find(browser, "#delete-btn").click()
    confirm(browser)
    wait(browser, lambda d: visible(d, "#welcome-view"))
    wait(browser, lambda d: not d.find_elements(By.CSS_SELECTOR, f"#task-list a[data-task-id='{task_id}']"))
    assert server.get(f"/api/v0/data_pipeline/tasks/{task_id}").status_code == 404
    assert script_errors(browser) == []


def test_create_upload_execute_complete_and_open_pair_file(browser, server, shots, downloads, tmp_path):
    require_routes(server, "POST /api/v0/data_pipeline/tasks/{}/upload-table-list",
                   "GET /api/v0/data_pipeline/tasks/{}/table-list-info", "GET /api/v0/data_pipeline/tasks/{}/files",
                   "GET /api/v0/data_pipeline/tasks/{}/files/{}", "POST /api/v0/data_pipeline/tasks/{}/logs/query")
    open_console(browser, server)
    sign_in(browser, server.api_key)
    open_create_form(browser, "高速公路数据处理")
    find(browser, "#create-submit").click()
    wait(browser, lambda d: d.current_url.split("#")[-1].startswith("/tasks/task_"))
    task_id = browser.current_url.split("#/tasks/")[-1]
    wait(browser, lambda d: visible(d, "#no-table-list"))

    list_file = tmp_path / "tables.txt"
    list_file.write_text("# 高速公路服务区\n" + "\n".join(BROWSER_TABLES) + "\n", encoding="utf-8")
    find(browser, "#table-list-upload").send_keys(str(list_file))
    find(browser, "#upload-table-list-btn").click()
    wait(browser, lambda d: [c.text for c in d.find_elements(By.CSS_SELECTOR, "#table-list-current .chip")]
         == list(BROWSER_TABLES))
    assert f"{len(BROWSER_TABLES)} 个表" in find(browser, "#table-count").text
    write_control(server, task_id, stand_ins_for_missing_steps())  # the real steps, as far as merged

    find(browser, "#execute-btn").click()
    wait(browser, lambda d: task_status(d) in ("in_progress", "completed"))
    wait(browser, lambda d: task_status(d) in ("completed", "failed"), timeout=300)
    assert task_status(browser) == "completed", server.task(task_id)
    wait(browser, lambda d: all(find(d, f"#step-{step}").get_attribute("data-status") == "completed"
                                for step in ("ddl_generation", "qa_generation", "sql_validation", "training_load")))
    assert find(browser, "#overall-text").text.startswith("100%")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#log-view .log-line"))
    shots(browser, "04_completed", focus="#task-view")

    find(browser, ".tab[data-tab=files]").click()
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#files-table tbody tr[data-file]"))
    primary = browser.find_elements(By.XPATH, "//tr[@data-file][.//span[contains(@class,'primary-mark')]]")
    assert len(primary) == 1
    pair_name = primary[0].get_attribute("data-file")
    assert pair_name.endswith("_pair.json")
    pairs_on_disk = json.loads((server.training_data_dir / task_id / pair_name).read_text(encoding="utf-8"))
    shots(browser, "05_files", focus=".tabs")
    primary[0].find_element(By.CSS_SELECTOR, ".preview-btn").click()
    wait(browser, lambda d: visible(d, "#preview-pairs"))
    shown = browser.find_elements(By.CSS_SELECTOR, "#preview-pairs .pair")
    assert len(shown) == len(pairs_on_disk)
    assert pairs_on_disk[0]["question"] in shown[0].find_element(By.CSS_SELECTOR, ".pair-q").text
    assert find(browser, "#modal-title").text == pair_name
    shots(browser, "06_pair_file")
    find(browser, "#modal-close").click()
    wait(browser, lambda d: not visible(d, "#modal"))
    # Downloads are fetched with the API key (a plain link would get 401), then saved.
    find(browser, "#files-table tr[data-file='bss_company.ddl'] a.file-link").click()
    saved = downloads / "bss_company.ddl"
    wait(browser, lambda d: saved.is_file() and saved.stat().st_size > 0)
    assert saved.read_bytes() == (server.training_data_dir / task_id / "bss_company.ddl").read_bytes()

    # The quality report as pictures: a bar per table, the complexity levels, the figures.
    quality = json.loads((server.training_data_dir / task_id / "quality_report.json").read_text(encoding="utf-8"))
    find(browser, ".tab[data-tab=quality]").click()
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#quality-view .chart-tables rect"))
    assert len(browser.find_elements(By.CSS_SELECTOR, "#quality-view .chart-tables rect")) == len(quality["tables"])
    for level, count in quality["complexity"].items():
        assert f" {count}" in find(browser, f"#quality-view .chart-complexity text[data-level={level}]").text
    assert find(browser, "#quality-view [data-key=executed] dd").text == str(quality["validation"]["executed"])
    recall = f"{quality['retrieval']['self_recall_at_5'] * 100:.1f}%"
    assert find(browser, "#quality-view [data-key=self_recall_at_5] dd").text == recall
    shots(browser, "09_quality", focus=".tabs")

    find(browser, ".tab[data-tab=logs]").click()
    Select(find(browser, "#log-step")).select_by_value("qa_generation")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#log-view .log-line") and all(
        line.get_attribute("data-step") == "qa_generation"
        for line in d.find_elements(By.CSS_SELECTOR, "#log-view .log-line")))
    shots(browser, "07_logs_filtered", focus=".tabs")
    Select(find(browser, "#log-step")).select_by_value("")
    Select(find(browser, "#log-level")).select_by_value("ERROR")
    wait(browser, lambda d: all(line.get_attribute("data-level") == "ERROR"
                                for line in d.find_elements(By.CSS_SELECTOR, "#log-view .log-line")))
    Select(find(browser, "#log-level")).select_by_value("")

    browser.execute_script("location.hash = '#/'")
    wait(browser, lambda d: visible(d, "#welcome-view"))
    Select(find(browser, "#status-filter")).select_by_value("completed")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f"#task-list a[data-task-id='{task_id}']")
         and all(b.get_attribute("data-status") == "completed"
                 for b in d.find_elements(By.CSS_SELECTOR, "#task-list .badge")))
    Select(find(browser, "#status-filter")).select_by_value("failed")
    wait(browser, lambda d: not d.find_elements(By.CSS_SELECTOR, f"#task-list a[data-task-id='{task_id}']"))
    Select(find(browser, "#status-filter")).select_by_value("")
    find(browser, "#task-search").send_keys("高速公路")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f"#task-list a[data-task-id='{task_id}']"))
    find(browser, f"#task-list a[data-task-id='{task_id}']").click()
    wait(browser, lambda d: find(d, "#task-id").text == task_id and task_status(d) == "completed")
    assert script_errors(browser) == []


def test_pick_tables_from_the_database(browser, server, shots):
    require_routes(server, "POST /api/v0/database/tables", "POST /api/v0/database/table/ddl",
                   "POST /api/v0/data_pipeline/tasks/{}/table-list", "GET /api/v0/data_pipeline/tasks/{}/table-list-info")
    task_id = server.create_task(task_name="选表任务", db_name="highway_db")
    open_console(browser, server)
    sign_in(browser, server.api_key)
    open_task(browser, task_id)
    find(browser, "#pick-tables-btn").click()
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#picker-list li")) >= len(DEMO_TABLES))
    names = [item.get_attribute("data-table") for item in browser.find_elements(By.CSS_SELECTOR, "#picker-list li")]
    assert {f"public.{name}" for name in DEMO_TABLES} <= set(names)

    find(browser, "#picker-list li[data-table='public.bss_company'] button").click()
    wait(browser, lambda d: visible(d, "#modal") and "create table" in find(d, "#modal-body").text.lower())
    find(browser, "#modal-close").click()

    find(browser, "#picker-filter").send_keys("service_area")
    wait(browser, lambda d: not find(d, "#picker-list li[data-table='public.bss_company']").is_displayed())
    find(browser, "#picker-all").click()
    find(browser, "#picker-add").click()
    typed = find(browser, "#table-names").get_attribute("value").split("\n")
    assert typed and all("service_area" in name for name in typed)
    shots(browser, "08_pick_tables", focus="#table-list-card")
    find(browser, "#save-table-list-btn").click()
    wait(browser, lambda d: [c.text for c in d.find_elements(By.CSS_SELECTOR, "#table-list-current .chip")] == typed)
    info = server.get(f"/api/v0/data_pipeline/tasks/{task_id}/table-list-info").json()["data"]
    assert info["table_count"] == len(typed)
    browser.execute_script("location.hash = '#/'")
    wait(browser, lambda d: visible(d, "#welcome-view"))
    shots(browser, "01_task_list")
    assert script_errors(browser) == []
    assert server.delete(f"/api/v0/data_pipeline/tasks/{task_id}").status_code == 200
