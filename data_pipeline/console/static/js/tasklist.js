// The task list (left) and the create form.
import { api, TASKS } from "./api.js";
import { $, badge, fill, h, toast, toastError } from "./dom.js";

const PAGE_SIZE = 15;
const state = { page: 1, totalPages: 1, selected: null, searchTimer: null };

export async function refreshTaskList() {
  const body = { page: state.page, page_size: PAGE_SIZE, sort_by: "created_at", sort_order: "desc" };
  const status = $("#status-filter").value;
  const name = $("#task-search").value.trim();
  if (status) body.status = status;
  if (name) body.task_name = name;
  let result;
  try {
    result = await api(`${TASKS}/query`, { method: "POST", body });
  } catch (error) {
    fill($("#task-list"), h("li", { class: "empty" }, `无法加载任务列表：${error.message}`));
    return;
  }
  const { pagination } = result;
  state.totalPages = Math.max(1, pagination.total_pages);
  if (state.page > state.totalPages) { state.page = state.totalPages; return refreshTaskList(); }
  const items = result.tasks.map((task) => h("li", {},
    h("a", { href: `#/tasks/${encodeURIComponent(task.task_id)}`, class: task.task_id === state.selected ? "active" : "",
      dataset: { taskId: task.task_id } },
    h("div", { class: "t-row" }, h("span", { class: "t-name" }, task.task_name || "（未命名任务）"), badge(task.status)),
    h("div", { class: "t-sub" }, h("span", { class: "mono" }, task.task_id), h("span", {}, task.db_name || "")))));
  fill($("#task-list"), items.length ? items : h("li", { class: "empty" }, "没有任务"));
  $("#page-info").textContent = `第 ${pagination.page}/${state.totalPages} 页 · 共 ${pagination.total} 个`;
  $("#prev-page").disabled = !pagination.has_prev;
  $("#next-page").disabled = !pagination.has_next;
}

export function markSelected(taskId) {
  state.selected = taskId;
  for (const link of document.querySelectorAll("#task-list a")) {
    link.classList.toggle("active", link.dataset.taskId === taskId);
  }
}

function createBody(form) {
  const body = {};
  for (const name of ["task_name", "db_name", "business_context", "db_connection", "table_list_file"]) {
    const value = form.elements[name].value.trim();
    if (value) body[name] = value;
  }
  for (const name of ["enable_sql_validation", "enable_llm_repair", "modify_original_file", "validate_by_execution",
    "enable_training_data_load", "backup_vector_tables", "truncate_vector_tables"]) {
    body[name] = form.elements[name].checked;
  }
  return body;
}

export function setupTaskList() {
  $("#status-filter").addEventListener("change", () => { state.page = 1; refreshTaskList(); });
  $("#task-search").addEventListener("input", () => {
    clearTimeout(state.searchTimer);
    state.searchTimer = setTimeout(() => { state.page = 1; refreshTaskList(); }, 300);
  });
  $("#prev-page").addEventListener("click", () => { state.page = Math.max(1, state.page - 1); refreshTaskList(); });
  $("#next-page").addEventListener("click", () => { state.page = Math.min(state.totalPages, state.page + 1); refreshTaskList(); });

  // truncate_vector_tables implies backup_vector_tables (guide §2.4).
  $("#f-truncate").addEventListener("change", (event) => {
    const backup = $("#f-backup");
    if (event.target.checked) backup.checked = true;
    backup.disabled = event.target.checked;
  });

  $("#create-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const submit = $("#create-submit");
    submit.disabled = true;
    try {
      const task = await api(TASKS, { method: "POST", body: createBody(form) });
      toast(`任务创建成功：${task.task_id}`, "ok");
      form.reset();
      $("#f-backup").disabled = false;
      state.page = 1;
      await refreshTaskList();
      location.hash = `#/tasks/${encodeURIComponent(task.task_id)}`;
    } catch (error) {
      toastError(error);
      for (const name of error.invalidParams || []) {
        const field = form.elements[name];
        if (field && field.focus) { field.focus(); break; }
      }
    } finally {
      submit.disabled = false;
    }
  });
}
