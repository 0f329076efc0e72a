// The console's entry point: routes (#/, #/new, #/tasks/<id>), the API key, service health.
import { api, apiKey, setApiKey, whenUnauthorized } from "./api.js";
import { $, setupModal, toast } from "./dom.js";
import { setupFiles } from "./files.js";
import { setupLogs } from "./logs.js";
import { setupTableList } from "./tablelist.js";
import { refreshTaskList, setupTaskList } from "./tasklist.js";
import { currentTaskId, setupTaskView, showTask, stopTask } from "./taskview.js";

const LIST_REFRESH_MS = 5000;

function showView(name) {
  for (const view of ["welcome", "create", "task"]) $(`#${view}-view`).hidden = view !== name;
}

function route() {
  const hash = location.hash || "#/";
  const task = hash.match(/^#\/tasks\/(.+)$/);
  if (task) {
    const taskId = decodeURIComponent(task[1]);
    showView("task");
    if (taskId !== currentTaskId()) showTask(taskId);
    return;
  }
  stopTask();
  if (hash === "#/new") {
    showView("create");
    $("#f-task-name").focus();
  } else {
    showView("welcome");
  }
}

async function checkHealth() {
  const box = $("#health");
  try {
    const health = await api("/api/v0/health");
    const llm = health.llm && health.llm.configured ? `LLM ${health.llm.model}` : "离线生成器（未配置 LLM）";
    $("#health-text").textContent = `服务正常 · v${health.version} · ${llm} · embedding ${health.embedding_provider}`;
    box.className = "health ok";
  } catch (error) {
    $("#health-text").textContent = `服务不可用：${error.message}`;
    box.className = "health bad";
  }
}

function setupApiKey() {
  const input = $("#api-key");
  input.value = apiKey();
  $("#api-key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    setApiKey(input.value.trim());
    $("#auth-banner").hidden = true;
    toast(input.value.trim() ? "API Key 已保存（仅保存在本浏览器）" : "API Key 已清除", "ok");
    refreshTaskList();
    if (currentTaskId()) showTask(currentTaskId());
  });
  whenUnauthorized(() => {
    $("#auth-banner").hidden = false;
  });
}

function start() {
  setupModal();
  setupApiKey();
  setupTaskList();
  setupTaskView();
  setupTableList();
  setupLogs();
  setupFiles();
  window.addEventListener("hashchange", route);
  checkHealth();
  refreshTaskList();
  route();
  setInterval(() => { if (!document.hidden) refreshTaskList(); }, LIST_REFRESH_MS);
  document.body.dataset.ready = "true";
}

start();
