// Small DOM helpers: building elements (text is always set as text, never parsed as HTML),
// formatting, toasts and the modal dialog.

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") element.className = value;
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function fill(element, ...children) {
  element.replaceChildren();
  for (const child of children.flat(Infinity)) {
    if (child !== undefined && child !== null && child !== false) element.append(child);
  }
  return element;
}

export const STATUS_TEXT = {
  pending: "待执行", queued: "排队中", in_progress: "执行中", partial_completed: "部分完成", completed: "已完成",
  failed: "失败", cancelled: "已取消", running: "运行中", skipped: "已跳过",
};

export function badge(status) {
  return h("span", { class: `badge s-${status}`, dataset: { status } }, `${STATUS_TEXT[status] || status} ${status}`);
}

export function setBadge(element, status) {
  element.className = `badge s-${status}`;
  element.dataset.status = status;
  element.textContent = `${STATUS_TEXT[status] || status} · ${status}`;
}

export function formatTime(iso) {
  return iso ? iso.replace("T", " ") : "—";
}

export function shortTime(iso) {
  return iso ? iso.slice(11, 19) : "";
}

export function duration(startIso, endIso) {
  if (!startIso) return "";
  const start = new Date(startIso);
  const end = endIso ? new Date(endIso) : new Date();
  let seconds = Math.max(0, Math.round((end - start) / 1000));
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  seconds %= 60;
  if (minutes < 60) return `${minutes}m${String(seconds).padStart(2, "0")}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, "0")}m`;
}

export function humanSize(bytes) {
  if (bytes === undefined || bytes === null) return "";
  const units = ["B", "KB", "MB", "GB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}

export function toast(message, kind = "info", code = "") {
  const box = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" },
    code ? h("span", { class: "code" }, code) : null, message);
  $("#toasts").append(box);
  setTimeout(() => box.remove(), kind === "error" ? 8000 : 4000);
}

export function toastError(error) {
  toast(error.message, "error", error.code ? `${error.code}${error.status ? ` · HTTP ${error.status}` : ""}` : "");
}

// ---- modal ----------------------------------------------------------------------------------

let closeHandler = null;

export function openModal({ title, body, tools = [], foot = [], narrow = false, onClose = null }) {
  const modal = $("#modal");
  $(".modal-box", modal).classList.toggle("narrow", narrow);
  fill($("#modal-title"), title);
  fill($("#modal-tools"), tools);
  fill($("#modal-body"), body);
  fill($("#modal-foot"), foot);
  closeHandler = onClose;
  modal.hidden = false;
}

export function closeModal() {
  const modal = $("#modal");
  if (modal.hidden) return;
  modal.hidden = true;
  fill($("#modal-body"));
  if (closeHandler) { const handler = closeHandler; closeHandler = null; handler(); }
}

export function confirmDialog(title, message, confirmText = "确定", danger = false) {
  return new Promise((resolve) => {
    let answer = false;
    const ok = h("button", { type: "button", class: `btn ${danger ? "btn-danger-solid" : "btn-primary"}`, id: "confirm-ok",
      onclick: () => { answer = true; closeModal(); } }, confirmText);
    const cancel = h("button", { type: "button", class: "btn", onclick: closeModal }, "取消");
    openModal({ title, body: h("p", {}, message), foot: [cancel, ok], narrow: true, onClose: () => resolve(answer) });
    ok.focus();
  });
}

export function setupModal() {
  $("#modal-close").addEventListener("click", closeModal);
  $("#modal").addEventListener("click", (event) => { if (event.target.id === "modal") closeModal(); });
  document.addEventListener("keydown", (event) => { if (event.key === "Escape") closeModal(); });
}
