// Task files: the list with downloads, previews of DDL / MD / JSON / text, and uploads.
import { api, fetchFile, fileUrl, taskUrl } from "./api.js";
import { $, fill, formatTime, h, humanSize, openModal, toast, toastError } from "./dom.js";

const PREVIEW_TYPES = new Set(["ddl", "md", "json", "txt", "log", "sql", "csv", "backup"]);
const PREVIEW_LIMIT = 2 * 1024 * 1024;
const state = { taskId: null };

export function resetFiles(taskId) {
  state.taskId = taskId;
  fill($("#files-table tbody"));
  $("#files-info").textContent = "";
}

function fileType(file) {
  return (file.file_type || file.file_name.split(".").pop() || "").toLowerCase();
}

export async function refreshFiles() {
  const taskId = state.taskId;
  let result;
  try {
    result = await api(taskUrl(taskId, "/files"));
  } catch (error) {
    if (taskId === state.taskId) {
      fill($("#files-table tbody"), h("tr", {}, h("td", { colspan: 6, class: "muted" }, `无法读取文件列表：${error.message}`)));
    }
    return;
  }
  if (taskId !== state.taskId) return;
  $("#files-info").textContent = `${result.total_files} 个文件 · ${result.total_size_human || humanSize(result.total_size)}`;
  const rows = result.files.map((file) => {
    const type = fileType(file);
    const canPreview = PREVIEW_TYPES.has(type) && (file.file_size || 0) <= PREVIEW_LIMIT;
    return h("tr", { dataset: { file: file.file_name } },
      h("td", {}, file.is_primary ? h("span", { class: "primary-mark", title: "主要输出文件 is_primary" }, "★") : null,
        h("a", { href: fileUrl(taskId, file.file_name), class: "file-link mono", onclick: (event) => download(event, file) }, file.file_name)),
      h("td", { class: "nowrap" }, type),
      h("td", { class: "num" }, file.file_size_human || humanSize(file.file_size)),
      h("td", { class: "nowrap" }, formatTime(file.modified_at || file.created_at)),
      h("td", {}, file.description || ""),
      h("td", { class: "nowrap" },
        canPreview ? h("button", { type: "button", class: "btn btn-small preview-btn", onclick: () => preview(file) }, "预览") : null,
        h("button", { type: "button", class: "btn btn-small btn-ghost", onclick: (event) => download(event, file) }, "下载")));
  });
  fill($("#files-table tbody"), rows.length ? rows : h("tr", {}, h("td", { colspan: 6, class: "muted" }, "任务目录中还没有文件")));
}

async function download(event, file) {
  event.preventDefault();
  try {
    const blob = await fetchFile(fileUrl(state.taskId, file.file_name));
    const link = h("a", { href: URL.createObjectURL(blob), download: file.file_name.split("/").pop() });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  } catch (error) {
    toastError(error);
  }
}

function pairList(pairs) {
  return h("ol", { class: "pairs" }, pairs.map((pair, index) => h("li", { class: "pair" },
    h("div", { class: "pair-q" }, h("span", { class: "n" }, `#${index + 1}`), pair.question),
    h("pre", { class: "pair-sql" }, pair.sql))));
}

function isPairFile(value) {
  return Array.isArray(value) && value.length > 0 && value.every((item) => item && typeof item.question === "string" && typeof item.sql === "string");
}

async function preview(file) {
  let text;
  try {
    text = await (await fetchFile(fileUrl(state.taskId, file.file_name))).text();
  } catch (error) {
    toastError(error);
    return;
  }
  const type = fileType(file);
  let body = h("pre", { class: "preview-text", id: "preview-content" }, text);
  const tools = [];
  if (type === "json") {
    try {
      const value = JSON.parse(text);
      const raw = h("pre", { class: "preview-text", id: "preview-content" }, JSON.stringify(value, null, 2));
      body = raw;
      if (isPairFile(value)) {
        const pairs = pairList(value);
        pairs.id = "preview-pairs";
        body = pairs;
        const toggle = h("button", { type: "button", class: "btn btn-small" }, "查看 JSON");
        toggle.addEventListener("click", () => {
          const showingPairs = $("#modal-body").firstChild === pairs;
          fill($("#modal-body"), showingPairs ? raw : pairs);
          toggle.textContent = showingPairs ? "查看问答对" : "查看 JSON";
        });
        tools.push(h("span", { class: "muted small" }, `${value.length} 个问答对`), toggle);
      }
    } catch (error) {
      tools.push(h("span", { class: "muted small" }, "（不是有效的 JSON，按文本显示）"));
    }
  }
  tools.push(h("button", { type: "button", class: "btn btn-small btn-primary", onclick: (event) => download(event, file) }, "下载"));
  openModal({ title: file.file_name, body, tools });
}

async function upload() {
  const input = $("#task-file-upload");
  const file = input.files[0];
  if (!file) { toast("请先选择要上传的文件（.ddl .md .json .sql .txt .csv）", "error"); return; }
  const form = new FormData();
  form.append("file", file, file.name);
  try {
    await api(taskUrl(state.taskId, "/files"), { method: "POST", form });
    toast(`文件已上传：${file.name}`, "ok");
    input.value = "";
    refreshFiles();
  } catch (error) {
    toastError(error);
  }
}

export function setupFiles() {
  $("#task-file-upload-btn").addEventListener("click", upload);
}
