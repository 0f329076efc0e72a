// The task log with level / step / keyword filters (POST logs/query), newest entries first.
import { api, taskUrl } from "./api.js";
import { $, fill, h, toastError } from "./dom.js";

const PAGE_SIZE = 100;
const state = { taskId: null, page: 1, totalPages: 1, loading: false, again: false };

export function resetLogs(taskId) {
  state.taskId = taskId;
  state.page = 1;
  state.totalPages = 1;
  fill($("#log-view"));
  $("#log-info").textContent = "";
  $("#log-page").textContent = "";
}

function filters() {
  const body = { page: state.page, page_size: PAGE_SIZE, sort_by: "line_number", sort_order: "desc" };
  const level = $("#log-level").value;
  const step = $("#log-step").value;
  const keyword = $("#log-keyword").value.trim();
  if (level) body.level = level;
  if (step) body.step_name = step;
  if (keyword) body.keyword = keyword;
  return body;
}

function line(entry) {
  return h("div", { class: "log-line", dataset: { level: entry.level, step: entry.step || "" } },
    h("span", { class: "log-time" }, entry.timestamp || ""),
    h("span", { class: `log-level lv-${entry.level}` }, entry.level || ""),
    h("span", { class: "log-step", title: entry.step || "" }, entry.step || "—"),
    h("span", {}, h("span", { class: "log-logger" }, `${entry.logger || ""}: `), entry.message || ""));
}

// `live`: a refresh while the task runs; it only updates the first page and keeps quiet on errors.
export async function refreshLogs({ live = false } = {}) {
  if (live && (!$("#log-auto").checked || state.page !== 1)) return;
  if (state.loading) {
    // A filter changed while a query was under way: query again when it ends, or the change is lost.
    if (!live) state.again = true;
    return;
  }
  const taskId = state.taskId;
  state.loading = true;
  try {
    const result = await api(taskUrl(taskId, "/logs/query"), { method: "POST", body: filters() });
    if (taskId !== state.taskId) return;
    const { pagination } = result;
    state.totalPages = Math.max(1, pagination.total_pages);
    fill($("#log-view"), result.logs.length ? result.logs.map(line)
      : h("div", { class: "log-empty" }, "没有符合条件的日志"));
    const info = result.log_file_info || {};
    $("#log-info").textContent = `共 ${pagination.total} 条${info.file_size !== undefined ? ` · 日志文件 ${info.file_size} 字节` : ""}` +
      (result.query_time ? ` · 查询 ${result.query_time}` : "");
    $("#log-page").textContent = `第 ${pagination.page}/${state.totalPages} 页`;
    $("#log-prev").disabled = !pagination.has_prev;
    $("#log-next").disabled = !pagination.has_next;
  } catch (error) {
    if (!live && taskId === state.taskId) {
      fill($("#log-view"), h("div", { class: "log-empty" }, `无法读取日志：${error.message}`));
      toastError(error);
    }
  } finally {
    state.loading = false;
    if (state.again) {
      state.again = false;
      refreshLogs();
    }
  }
}

export function setupLogs() {
  const search = () => { state.page = 1; refreshLogs(); };
  $("#log-search").addEventListener("click", search);
  $("#log-level").addEventListener("change", search);
  $("#log-step").addEventListener("change", search);
  $("#log-keyword").addEventListener("keydown", (event) => { if (event.key === "Enter") search(); });
  $("#log-prev").addEventListener("click", () => { state.page = Math.max(1, state.page - 1); refreshLogs(); });
  $("#log-next").addEventListener("click", () => { state.page = Math.min(state.totalPages, state.page + 1); refreshLogs(); });
}
