// The quality tab: quality_report.json of the task drawn as plain SVG (no library, no CDN):
// pairs per table (bars), the complexity distribution (one stacked bar with a legend), and the
// validation and retrieval figures.
import { fetchFile, fileUrl } from "./api.js";
import { $, fill, h } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const LEVELS = [["simple", "简单"], ["moderate", "中等"], ["complex", "复杂"], ["highly_complex", "高度复杂"]];
const LEVEL_COLORS = ["#8fb8de", "#4f8fcf", "#e0a030", "#c0504d"];
const state = { taskId: null };

function svg(tag, attrs = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, String(value));
  for (const child of children) element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return element;
}

export function resetQuality(taskId) {
  state.taskId = taskId;
  fill($("#quality-view"));
}

export async function refreshQuality() {
  const taskId = state.taskId;
  let report;
  try {
    const blob = await fetchFile(fileUrl(taskId, "quality_report.json"));
    report = JSON.parse(await blob.text());
  } catch (error) {
    if (taskId === state.taskId) fill($("#quality-view"), h("p", { class: "muted" }, "还没有质量报告（qa_generation 之后生成 quality_report.json）"));
    return;
  }
  if (taskId !== state.taskId) return;
  fill($("#quality-view"),
    h("p", { class: "muted small" },
      `问答对 ${report.pairs_total} 条 · 重复问题 ${report.duplicate_questions} · 记录管理字段占比 ${(report.bookkeeping_share * 100).toFixed(1)}%`),
    h("div", { class: "quality-grid" },
      section("复杂度分布 complexity", complexityChart(report.complexity, report.pairs_total)),
      section("SQL验证 validation", figures(report.validation, [
        ["explain_valid", "EXPLAIN通过"], ["executed", "已执行"], ["empty_results", "空结果"],
        ["repaired", "已修复"], ["removed", "已删除"]])),
      section("检索自召回 retrieval", report.retrieval
        ? figures(report.retrieval, [["self_recall_at_1", "recall@1"], ["self_recall_at_5", `recall@${report.retrieval.k}`]], true)
        : h("p", { class: "muted small" }, "training_load 之后才有"))),
    section("各表问答对数 pairs per table", tableBars(report.tables)));
}

function section(title, body) {
  return h("div", { class: "quality-card" }, h("h4", {}, title), body);
}

function figures(values, names, percent = false) {
  return h("dl", { class: "quality-figures" }, names.map(([key, label]) => h("div", { dataset: { key } },
    h("dt", {}, label), h("dd", {}, percent ? `${(values[key] * 100).toFixed(1)}%` : String(values[key])))));
}

function complexityChart(complexity, total) {
  const width = 320;
  const chart = svg("svg", { viewBox: `0 0 ${width} 70`, width, height: 70, role: "img", class: "chart-complexity" });
  let x = 0;
  LEVELS.forEach(([key, label], index) => {
    const count = complexity[key] || 0;
    const w = total ? (count / total) * width : 0;
    if (w > 0) chart.append(svg("rect", { x, y: 0, width: w, height: 22, fill: LEVEL_COLORS[index] }, svg("title", {}, `${label} ${count}`)));
    x += w;
    chart.append(svg("rect", { x: (index % 2) * 160, y: 32 + Math.floor(index / 2) * 18, width: 10, height: 10, fill: LEVEL_COLORS[index] }));
    chart.append(svg("text", { x: (index % 2) * 160 + 14, y: 41 + Math.floor(index / 2) * 18, "font-size": 11, "data-level": key },
      `${label} ${count}（${total ? Math.round((count / total) * 100) : 0}%）`));
  });
  return chart;
}

function tableBars(tables) {
  const rowHeight = 18;
  const labelWidth = 220;
  const barWidth = 360;
  const max = Math.max(1, ...tables.map((t) => t.pairs));
  const chart = svg("svg", { viewBox: `0 0 ${labelWidth + barWidth + 60} ${tables.length * rowHeight + 4}`,
    width: labelWidth + barWidth + 60, height: tables.length * rowHeight + 4, role: "img", class: "chart-tables" });
  tables.forEach((table, index) => {
    const y = index * rowHeight + 2;
    const name = table.table.length > 32 ? `${table.table.slice(0, 31)}…` : table.table;
    chart.append(svg("text", { x: labelWidth - 6, y: y + 12, "text-anchor": "end", "font-size": 11 }, name));
    chart.append(svg("rect", { x: labelWidth, y, width: Math.max(1, (table.pairs / max) * barWidth), height: rowHeight - 5,
      fill: table.pairs >= 10 ? "#4f8fcf" : "#e0a030" },
      svg("title", {}, `${table.table}: ${table.pairs} 条，用到 ${table.columns_used}/${table.columns_total} 个字段`)));
    chart.append(svg("text", { x: labelWidth + (table.pairs / max) * barWidth + 4, y: y + 12, "font-size": 11 }, String(table.pairs)));
  });
  return chart;
}
