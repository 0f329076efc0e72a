// The task's table list: upload a .txt, type names, or pick them from the database tools API.
import { api, taskUrl } from "./api.js";
import { $, fill, formatTime, h, openModal, toast, toastError } from "./dom.js";

const state = { taskId: null, tables: [] };

export function resetTableList(taskId) {
  state.taskId = taskId;
  state.tables = [];
  fill($("#table-list-current"));
  $("#table-count").textContent = "";
  $("#table-names").value = "";
  $("#table-list-upload").value = "";
  $("#table-picker").hidden = true;
  fill($("#picker-list"));
  $("#picker-info").textContent = "";
}

export async function refreshTableList(task) {
  const taskId = state.taskId;
  if (task) {
    // A saved connection is shown masked (***): only one without a password can be reused here.
    const connection = (task.parameters || {}).db_connection || "";
    const input = $("#picker-connection");
    input.value = connection.includes("***") ? "" : connection;
    input.placeholder = connection.includes("***")
      ? "任务的连接字符串已隐藏密码：请输入完整的 db_connection"
      : "db_connection（留空使用服务的默认数据库）";
  }
  let info;
  try {
    info = await api(taskUrl(taskId, "/table-list-info"));
  } catch (error) {
    if (taskId !== state.taskId) return;
    fill($("#table-list-current"), h("span", { class: "muted" }, `无法读取表清单：${error.message}`));
    return;
  }
  if (taskId !== state.taskId) return;
  state.tables = info.tables || [];
  if (!info.has_table_list) {
    $("#table-count").textContent = "";
    fill($("#table-list-current"), h("span", { class: "muted", id: "no-table-list" }, "尚未设置表清单：请上传文件、输入表名或从数据库选择。"));
    return;
  }
  $("#table-count").textContent = `${info.table_count} 个表 · ${info.file_name || "table_list.txt"}` +
    (info.uploaded_at ? ` · ${formatTime(info.uploaded_at)}` : "");
  fill($("#table-list-current"), state.tables.map((name) => h("span", { class: "chip" }, name)));
}

function typedNames() {
  return $("#table-names").value.split(/[\n,]/).map((name) => name.trim()).filter(Boolean);
}

async function uploadFile() {
  const file = $("#table-list-upload").files[0];
  if (!file) { toast("请先选择一个 .txt 表清单文件", "error"); return; }
  const form = new FormData();
  form.append("file", file, file.name);
  try {
    const result = await api(taskUrl(state.taskId, "/upload-table-list"), { method: "POST", form });
    toast(`表清单上传成功：${result.table_count} 个表`, "ok");
    $("#table-list-upload").value = "";
    refreshTableList();
  } catch (error) {
    toastError(error);
  }
}

async function saveTyped() {
  const names = typedNames();
  if (!names.length) { toast("请输入至少一个表名", "error"); return; }
  try {
    const result = await api(taskUrl(state.taskId, "/table-list"), { method: "POST", body: { table_names: names } });
    toast(`表清单已保存：${result.table_count} 个表`, "ok");
    refreshTableList();
  } catch (error) {
    toastError(error);
  }
}

// ---- picking from the database ----------------------------------------------------------------

function connectionBody() {
  const connection = $("#picker-connection").value.trim();
  return connection ? { db_connection: connection } : {};
}

async function searchTables() {
  const body = connectionBody();
  const schema = $("#picker-schema").value.trim();
  const pattern = $("#picker-pattern").value.trim();
  if (schema) body.schema = schema;
  if (pattern) body.table_name_pattern = pattern;
  $("#picker-info").textContent = "查询中…";
  try {
    const result = await api("/api/v0/database/tables", { method: "POST", body });
    const database = (result.db_connection_info || {}).database;
    $("#picker-info").textContent = `${result.total} 个表${database ? ` · 数据库 ${database}` : ""}`;
    const chosen = new Set([...state.tables, ...typedNames()]);
    fill($("#picker-list"), result.tables.map((name) => h("li", { dataset: { table: name } },
      h("label", { class: "check" }, h("input", { type: "checkbox", value: name, checked: chosen.has(name) }), name),
      h("button", { type: "button", class: "btn btn-ghost btn-small", title: "查看 DDL", onclick: () => showDdl(name) }, "DDL"))));
    $("#picker-all").checked = false;
  } catch (error) {
    $("#picker-info").textContent = "";
    toastError(error);
  }
}

async function showDdl(table) {
  try {
    const result = await api("/api/v0/database/table/ddl", { method: "POST", body: { table, type: "ddl", ...connectionBody() } });
    const info = result.table_info || {};
    const title = `${info.full_name || table}${info.comment ? `（${info.comment}）` : ""}`;
    openModal({ title, body: h("pre", { class: "preview-text" }, result.ddl || "") });
  } catch (error) {
    toastError(error);
  }
}

function visibleBoxes() {
  return Array.from(document.querySelectorAll("#picker-list li"))
    .filter((item) => !item.hidden).map((item) => item.querySelector("input"));
}

function addSelected() {
  const picked = Array.from(document.querySelectorAll("#picker-list input:checked")).map((box) => box.value);
  if (!picked.length) { toast("请至少选择一个表", "error"); return; }
  const names = typedNames();
  const merged = [...names, ...picked.filter((name) => !names.includes(name))];
  $("#table-names").value = merged.join("\n");
  toast(`已加入 ${picked.length} 个表，点击“保存表清单”生效`, "info");
}

export function setupTableList() {
  $("#upload-table-list-btn").addEventListener("click", uploadFile);
  $("#save-table-list-btn").addEventListener("click", saveTyped);
  $("#pick-tables-btn").addEventListener("click", () => {
    const picker = $("#table-picker");
    picker.hidden = !picker.hidden;
    if (!picker.hidden && !document.querySelector("#picker-list li")) searchTables();
  });
  $("#picker-search").addEventListener("click", searchTables);
  for (const id of ["#picker-schema", "#picker-pattern", "#picker-connection"]) {
    $(id).addEventListener("keydown", (event) => { if (event.key === "Enter") { event.preventDefault(); searchTables(); } });
  }
  $("#picker-all").addEventListener("change", (event) => {
    for (const box of visibleBoxes()) box.checked = event.target.checked;
  });
  $("#picker-filter").addEventListener("input", (event) => {
    const text = event.target.value.trim().toLowerCase();
    for (const item of document.querySelectorAll("#picker-list li")) {
      item.hidden = Boolean(text) && !item.dataset.table.toLowerCase().includes(text);
    }
  });
  $("#picker-add").addEventListener("click", addSelected);
}
