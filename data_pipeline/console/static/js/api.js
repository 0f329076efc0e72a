// Talking to the API: the envelope, the API key, errors as exceptions.
const KEY_STORAGE = "dataPipeline.apiKey";
export const TASKS = "/api/v0/data_pipeline/tasks";

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.details || (body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = error.error_code || (status ? `HTTP_${status}` : "NETWORK_ERROR");
    this.invalidParams = error.invalid_params || [];
  }
}

export function apiKey() {
  return localStorage.getItem(KEY_STORAGE) || "";
}

export function setApiKey(value) {
  if (value) localStorage.setItem(KEY_STORAGE, value);
  else localStorage.removeItem(KEY_STORAGE);
}

let onUnauthorized = () => {};
export function whenUnauthorized(callback) { onUnauthorized = callback; }

function headers(extra = {}) {
  const key = apiKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

async function send(path, options) {
  try {
    return await fetch(path, options);
  } catch (error) {
    throw new ApiError(0, { error: { details: "无法连接到服务，请检查服务是否运行" } });
  }
}

// JSON endpoints: returns the envelope's `data`, throws ApiError for `success: false`.
export async function api(path, { method = "GET", body, form } = {}) {
  const options = { method, headers: headers() };
  if (form) {
    options.body = form;
  } else if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await send(path, options);
  let payload = null;
  try { payload = await response.json(); } catch (error) { payload = null; }
  if (!response.ok || !payload || payload.success !== true) {
    if (response.status === 401) onUnauthorized();
    throw new ApiError(response.status, payload);
  }
  return payload.data;
}

// A task file as a Blob (downloads and previews carry the API key, so no plain links).
export async function fetchFile(url) {
  const response = await send(url, { headers: headers() });
  if (!response.ok) {
    let payload = null;
    try { payload = await response.json(); } catch (error) { payload = null; }
    if (response.status === 401) onUnauthorized();
    throw new ApiError(response.status, payload);
  }
  return response.blob();
}

export function fileUrl(taskId, fileName) {
  const path = fileName.split("/").map(encodeURIComponent).join("/");
  return `${TASKS}/${encodeURIComponent(taskId)}/files/${path}`;
}

export const taskUrl = (taskId, suffix = "") => `${TASKS}/${encodeURIComponent(taskId)}${suffix}`;
