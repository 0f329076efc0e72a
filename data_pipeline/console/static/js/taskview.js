// One task: header and actions, the live view of the four steps (polling GET /tasks/<id>),
// and the tabs below (logs, files, executions, parameters).
import { api, taskUrl } from "./api.js";
import { $, $$, confirmDialog, duration, fill, formatTime, h, setBadge, shortTime, toast, toastError } from "./dom.js";
import { refreshFiles, resetFiles } from "./files.js";
import { refreshLogs, resetLogs } from "./logs.js";
import { refreshQuality, resetQuality } from "./quality.js";
import { refreshTableList, resetTableList } from "./tablelist.js";
import { markSelected, refreshTaskList } from "./tasklist.js";

export const STEPS = [
  ["ddl_generation", "DDL/MD 文档生成"],
  ["qa_generation", "Question-SQL 对生成"],
  ["sql_validation", "SQL 验证和修复"],
  ["training_load", "训练数据加载"],
];
const POLL_MS = 1500;
const IDLE_POLL_MS = 5000;  // a task not running here may still be started elsewhere (CLI, another browser)
const current = { taskId: null, task: null, timer: null, generation: 0, running: false, tab: "logs" };

export const currentTask = () => current.task;
export const currentTaskId = () => current.taskId;

export async function showTask(taskId) {
  clearTimeout(current.timer);
  current.generation += 1;
  current.taskId = taskId;
  current.task = null;
  current.running = false;
  markSelected(taskId);
  fill($("#steps"));
  fill($("#task-meta"));
  $("#task-title").textContent = "加载中…";
  $("#task-id").textContent = taskId;
  resetLogs(taskId);
  resetFiles(taskId);
  resetQuality(taskId);
  resetTableList(taskId);
  const task = await refreshTask();
  if (task) {
    applyExecutionDefaults(task);
    refreshTableList(task);
    refreshTab();
  }
}

export function stopTask() {
  clearTimeout(current.timer);
  current.generation += 1;
  current.taskId = null;
  current.task = null;
  markSelected(null);
}

async function refreshTask() {
  const generation = current.generation;
  clearTimeout(current.timer);
  let task;
  try {
    task = await api(taskUrl(current.taskId));
  } catch (error) {
    if (generation !== current.generation) return null;
    if (error.status === 404) {
      $("#task-title").textContent = "任务不存在";
      setBadge($("#task-status"), "failed");
      return null;
    }
    toastError(error);
    current.timer = setTimeout(refreshTask, POLL_MS * 2);
    return null;
  }
  if (generation !== current.generation) return null;
  const wasRunning = current.running;
  current.task = task;
  current.running = ["queued", "in_progress"].includes(task.status);
  renderTask(task);
  current.timer = setTimeout(refreshTask, current.running ? POLL_MS : IDLE_POLL_MS);
  if (current.running) {
    if (current.tab === "logs") refreshLogs({ live: true });
  } else if (wasRunning) {
    // The execution just ended: everything it wrote is now worth showing.
    toast(`任务 ${task.task_id} 执行结束：${task.status}`, task.status === "completed" ? "ok" : "info");
    refreshTab();
    refreshTableList();
    refreshTaskList();
  }
  return task;
}

function renderTask(task) {
  $("#task-title").textContent = task.task_name || "（未命名任务）";
  $("#task-id").textContent = task.task_id;
  setBadge($("#task-status"), task.status);
  const meta = [
    ["数据库 db_name", task.db_name || "—"],
    ["创建者 created_by", task.created_by || "—"],
    ["创建时间 created_at", formatTime(task.created_at)],
    ["开始时间 started_at", formatTime(task.started_at)],
    ["完成时间 completed_at", formatTime(task.completed_at)],
    ["业务上下文 business_context", task.business_context || "—"],
  ];
  if (task.queue_position) meta.unshift(["排队位置 queue_position", String(task.queue_position)]);
  fill($("#task-meta"), meta.map(([label, value]) => h("div", {}, h("dt", {}, label), h("dd", {}, value))));
  const error = $("#task-error");
  const showError = task.error_message && ["failed", "cancelled"].includes(task.status);
  error.hidden = !showError;
  const code = task.error_code ? ` [${task.error_code}]` : "";
  error.textContent = showError ? `错误信息 error_message${code}：${task.error_message}` : "";

  const running = task.status === "in_progress";
  const queued = task.status === "queued";
  $("#execute-btn").disabled = running || queued;
  $("#cancel-btn").disabled = !(running || queued);
  $("#delete-btn").disabled = running;
  renderSteps(task);
  renderParameters(task);
}

function stepsOfExecution(task) {
  const execution = task.execution || {};
  if (execution.execution_mode === "step" && execution.step_name) return [execution.step_name];
  return STEPS.map(([name]) => name);
}

function progressFraction(progress) {
  return progress && progress.total ? Math.min(1, progress.done / progress.total) : 0;
}

function renderSteps(task) {
  const byName = Object.fromEntries((task.steps || []).map((step) => [step.step_name, step]));
  const cards = STEPS.map(([name, label], index) => {
    const step = byName[name] || { step_status: (task.step_status || {})[name] || "pending" };
    const status = step.step_status;
    const times = [];
    if (step.started_at) times.push(`开始 ${shortTime(step.started_at)}`);
    if (step.completed_at) times.push(`结束 ${shortTime(step.completed_at)}`);
    if (step.started_at) times.push(`耗时 ${duration(step.started_at, step.completed_at)}`);
    const progress = step.progress;
    const children = [
      h("div", { class: "step-top" }, h("span", { class: "step-index" }, index + 1),
        h("span", { class: `badge s-${status}`, dataset: { status } }, status)),
      h("div", { class: "step-title" }, label),
      h("div", { class: "step-name" }, name),
      h("div", { class: "step-times" }, times.length ? times.join(" · ") : "尚未执行"),
    ];
    if (status === "running" || (progress && progress.total)) {
      const fraction = status === "completed" ? 1 : progressFraction(progress);
      const fillBar = h("div", { class: `progress-fill${status === "completed" ? " done" : ""}` });
      fillBar.style.width = `${Math.round(fraction * 100)}%`;
      children.push(h("div", { class: "progress" }, fillBar));
      children.push(h("div", { class: "step-progress-text" },
        progress && progress.total ? `${progress.done}/${progress.total} ${progress.unit || ""}` : "进行中…"));
    }
    if (step.error_message) children.push(h("div", { class: "step-error" }, step.error_message));
    if (status === "completed" && step.result) children.push(resultSummary(step.result));
    return h("li", { class: `step s-${status}`, id: `step-${name}`, dataset: { status } }, children);
  });
  fill($("#steps"), cards);

  const names = stepsOfExecution(task);
  let done = 0;
  for (const name of names) {
    const step = byName[name] || {};
    const status = step.step_status || (task.step_status || {})[name];
    if (status === "completed" || status === "skipped") done += 1;
    else if (status === "running") done += progressFraction(step.progress);
  }
  const fraction = task.status === "completed" ? 1 : names.length ? done / names.length : 0;
  const bar = $("#overall-bar");
  bar.style.width = `${Math.round(fraction * 100)}%`;
  bar.className = `progress-fill${task.status === "completed" ? " done" : ""}${task.status === "failed" ? " bad" : ""}`;
  const finished = names.filter((name) => ["completed", "skipped"].includes((byName[name] || {}).step_status)).length;
  const currentStep = task.current_step;
  let text = `${Math.round(fraction * 100)}% · ${finished}/${names.length} 个步骤完成`;
  if (currentStep && currentStep.status === "running") {
    const p = currentStep.progress;
    text += ` · 当前 ${currentStep.step}${p && p.total ? ` ${p.done}/${p.total} ${p.unit || ""}` : ""}`;
  }
  $("#overall-text").textContent = text;
}

// The step's result in a few figures: counts and flags (long texts and file names are in the files tab).
function resultSummary(result) {
  const entries = Object.entries(result)
    .filter(([key, value]) => key !== "duration" && (typeof value === "number" || typeof value === "boolean"
      || (typeof value === "string" && value.length <= 24)))
    .slice(0, 6)
    .map(([key, value]) => [key, typeof value === "number" && !Number.isInteger(value) ? value.toFixed(3) : String(value)]);
  return h("dl", { class: "step-result" }, entries.map(([key, value]) => [h("dt", {}, key), h("dd", {}, value)]));
}

function renderParameters(task) {
  const entries = Object.entries(task.parameters || {});
  fill($("#parameters"), entries.map(([key, value]) => [
    h("dt", {}, key), h("dd", {}, value === null ? "—" : typeof value === "object" ? JSON.stringify(value) : String(value))]));
}

function applyExecutionDefaults(task) {
  const parameters = task.parameters || {};
  $("#exec-truncate").checked = Boolean(parameters.truncate_vector_tables);
  $("#exec-backup").checked = Boolean(parameters.backup_vector_tables || parameters.truncate_vector_tables);
  $("#exec-backup").disabled = $("#exec-truncate").checked;
}

// ---- tabs -----------------------------------------------------------------------------------

async function refreshExecutions() {
  const taskId = current.taskId;
  try {
    const result = await api(taskUrl(taskId, "/executions"));
    if (taskId !== current.taskId) return;
    const rows = result.executions.map((e) => h("tr", {},
      h("td", { class: "mono" }, e.execution_id),
      h("td", {}, e.execution_mode === "step" ? `step · ${e.step_name}` : "complete"),
      h("td", {}, h("span", { class: `badge s-${e.status}` }, e.status)),
      h("td", { class: "nowrap" }, formatTime(e.started_at)),
      h("td", { class: "nowrap" }, formatTime(e.completed_at)),
      h("td", {}, e.error_code ? `[${e.error_code}] ${e.error_message || ""}` : (e.error_message || ""))));
    fill($("#executions-table tbody"), rows.length ? rows : h("tr", {}, h("td", { colspan: 6, class: "muted" }, "还没有执行记录")));
  } catch (error) {
    toastError(error);
  }
}

function refreshTab() {
  if (current.tab === "logs") refreshLogs();
  else if (current.tab === "files") refreshFiles();
  else if (current.tab === "quality") refreshQuality();
  else if (current.tab === "executions") refreshExecutions();
}

function selectTab(name) {
  current.tab = name;
  for (const tab of $$(".tab")) tab.classList.toggle("active", tab.dataset.tab === name);
  for (const panel of $$(".tab-panel")) panel.hidden = panel.id !== `tab-${name}`;
  if (current.taskId) refreshTab();
}

// ---- actions --------------------------------------------------------------------------------

async function execute() {
  const mode = $("#exec-mode").value;
  const body = {
    execution_mode: mode,
    backup_vector_tables: $("#exec-backup").checked,
    truncate_vector_tables: $("#exec-truncate").checked,
  };
  if (mode === "step") body.step_name = $("#exec-step").value;
  $("#execute-btn").disabled = true;
  try {
    const started = await api(taskUrl(current.taskId, "/execute"), { method: "POST", body });
    toast(`任务执行已启动：${started.execution_id || ""}`, "ok");
    current.running = true;
    await refreshTask();
    refreshTaskList();
  } catch (error) {
    toastError(error);
    $("#execute-btn").disabled = false;
  }
}

async function cancel() {
  const taskId = current.taskId;
  if (!(await confirmDialog("取消执行", `确定要取消任务 ${taskId} 的执行吗？正在运行的步骤会被停止。`, "取消执行", true))) return;
  try {
    await api(taskUrl(taskId, "/cancel"), { method: "POST" });
    toast("任务已取消", "ok");
    await refreshTask();
    refreshTaskList();
  } catch (error) {
    toastError(error);
  }
}

async function remove() {
  const taskId = current.taskId;
  if (!(await confirmDialog("删除任务", `确定要删除任务 ${taskId} 吗？任务记录和任务目录中的所有文件都会被删除，无法恢复。`, "删除", true))) return;
  try {
    await api(taskUrl(taskId), { method: "DELETE" });
    toast(`任务 ${taskId} 已删除`, "ok");
    location.hash = "#/";
    refreshTaskList();
  } catch (error) {
    toastError(error);
  }
}

export function setupTaskView() {
  $("#exec-mode").addEventListener("change", (event) => { $("#exec-step").hidden = event.target.value !== "step"; });
  $("#exec-truncate").addEventListener("change", (event) => {
    if (event.target.checked) $("#exec-backup").checked = true;
    $("#exec-backup").disabled = event.target.checked;
  });
  $("#execute-btn").addEventListener("click", execute);
  $("#cancel-btn").addEventListener("click", cancel);
  $("#delete-btn").addEventListener("click", remove);
  for (const tab of $$(".tab")) tab.addEventListener("click", () => selectTab(tab.dataset.tab));
  $("#files-refresh").addEventListener("click", () => refreshFiles());
}
