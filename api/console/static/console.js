// The console: a hash-routed page over the /v1 API. Every text from the API goes in with
// textContent (never innerHTML), so a transcript cannot inject markup.
"use strict";

const main = () => document.getElementById("main");

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

function cookie(name) {
  const found = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
  return found ? decodeURIComponent(found.slice(name.length + 1)) : "";
}

class ApiError extends Error {
  constructor(status, detail) { super(detail || `HTTP ${status}`); this.status = status; }
}

async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRF-Token"] = cookie("fd_csrf");
  const response = await fetch(path, { method, headers, credentials: "same-origin",
                                       body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) throw new ApiError(response.status, data && data.detail);
  return data;
}

const fmt = {
  time: (iso) => (iso ? new Date(iso).toLocaleString() : "—"),
  ms: (value) => (value === null || value === undefined ? "—" : `${Math.round(value)} ms`),
  pct: (part, whole) => (whole ? `${Math.round((100 * part) / whole)}%` : "—"),
  dur: (s) => (s === null || s === undefined ? "—" : `${Math.floor(s / 60)}m ${s % 60}s`),
  // null is "not known" (usage no price covers), never zero
  money: (value, currency) => (value === null || value === undefined ? "not priced" : `${value.toFixed(4)} ${currency || ""}`),
  rate: (value) => (value === null || value === undefined ? "—" : `${Math.round(100 * value)}%`),
};

function show(...nodes) {
  main().replaceChildren(...nodes);
}

function failure(error) {
  if (error instanceof ApiError && error.status === 401) { location.hash = "#/signin"; return; }
  show(h("p", { class: "error" }, `Something went wrong: ${error.message}`));
}

// --- sign in -------------------------------------------------------------------------------

function signInPage() {
  document.getElementById("nav").hidden = true;
  const input = h("input", { type: "password", id: "api-key", name: "key", autocomplete: "off", size: 60 });
  const message = h("p", { class: "error", id: "signin-error" });
  const form = h("form", { id: "signin", onsubmit: async (event) => {
    event.preventDefault();
    try {
      await api("/console/session", { method: "POST", body: { key: input.value.trim() } });
      location.hash = "#/calls";
    } catch (error) { message.textContent = error.message; }
  } }, h("label", {}, "API key", input), h("button", { type: "submit" }, "Sign in"));
  show(h("h1", {}, "Sign in"), h("p", { class: "muted" },
    "Use a key from python -m db apikeys create ORG_SLUG --scope write."), form, message);
}

// --- the call log --------------------------------------------------------------------------

const CALL_FILTERS = ["started_from", "started_to", "location_id", "status", "outcome", "caller_number",
                      "agent_config_id", "sentiment", "intent", "min_latency_ms"];

function select(name, options, current) {
  return h("select", { name, id: `f-${name}` }, h("option", { value: "" }, "any"),
    options.map(([value, label]) => h("option", { value, selected: value === current }, label)));
}

async function callsPage(params) {
  const [locations, configs] = await Promise.all([api("/v1/locations"), api("/v1/configs")]);
  const query = new URLSearchParams();
  for (const name of CALL_FILTERS) if (params.get(name)) query.set(name, params.get(name));
  const form = h("form", { class: "filters", id: "call-filters", onsubmit: (event) => {
    event.preventDefault();
    const chosen = new URLSearchParams();
    for (const [name, value] of new FormData(event.target)) if (value) chosen.set(name, value);
    location.hash = `#/calls?${chosen}`;
  } },
    h("label", {}, "From", h("input", { type: "date", name: "started_from", value: params.get("started_from") })),
    h("label", {}, "To", h("input", { type: "date", name: "started_to", value: params.get("started_to") })),
    h("label", {}, "Location", select("location_id", locations.map((l) => [l.id, l.name]), params.get("location_id"))),
    h("label", {}, "Status", select("status", ["pending", "active", "completed", "failed", "abandoned"]
      .map((s) => [s, s]), params.get("status"))),
    h("label", {}, "Outcome", h("input", { name: "outcome", value: params.get("outcome"), size: 14 })),
    h("label", {}, "Caller number", h("input", { name: "caller_number", value: params.get("caller_number"), size: 14 })),
    h("label", {}, "Configuration", select("agent_config_id", configs.map((c) => [c.id, `v${c.version}`]),
      params.get("agent_config_id"))),
    h("label", {}, "Sentiment", select("sentiment", ["positive", "neutral", "negative", "mixed"].map((s) => [s, s]),
      params.get("sentiment"))),
    h("label", {}, "Min latency (ms)", h("input", { type: "number", min: 0, name: "min_latency_ms",
      value: params.get("min_latency_ms"), size: 6 })),
    h("button", { type: "submit", id: "apply-filters" }, "Filter"));
  const body = h("tbody", { id: "call-rows" });
  const more = h("button", { type: "button", class: "plain", hidden: true }, "More");
  const table = h("table", { id: "calls" }, h("thead", {}, h("tr", {},
    ["Started", "Location", "Caller", "Status", "Outcome", "Duration", "Config", "Sentiment"].map((t) => h("th", {}, t)))), body);
  show(h("h1", {}, "Calls"), form, table, more);
  // Dates are local days: from the start of the first to the end of the last (the API's bound is exclusive).
  for (const [name, extraDays] of [["started_from", 0], ["started_to", 1]]) {
    if (!query.get(name)) continue;
    const day = new Date(query.get(name) + "T00:00:00");
    day.setDate(day.getDate() + extraDays);
    query.set(name, day.toISOString());
  }
  let cursor = null;
  async function load() {
    const page = new URLSearchParams(query);
    if (cursor) page.set("cursor", cursor);
    const data = await api(`/v1/calls?${page}`);
    for (const call of data.items) {
      body.append(h("tr", { class: "link call-row", "data-id": call.id, onclick: () => { location.hash = `#/calls/${call.id}`; } },
        h("td", {}, fmt.time(call.started_at)), h("td", {}, call.location_name || "—"),
        h("td", {}, call.caller_number || "—"), h("td", {}, call.status), h("td", {}, call.outcome || "—"),
        h("td", {}, fmt.dur(call.duration_seconds)), h("td", {}, call.config_version ? `v${call.config_version}` : "—"),
        h("td", {}, call.sentiment || "—")));
    }
    if (!body.children.length) body.append(h("tr", {}, h("td", { colspan: 8, class: "muted" }, "No calls match.")));
    cursor = data.next_cursor;
    more.hidden = !cursor;
  }
  more.addEventListener("click", () => load().catch(failure));
  await load();
}

// --- one call ------------------------------------------------------------------------------

function legend() {
  return h("div", { class: "legend" }, Object.entries(Charts.STAGE_COLORS).map(([stage, color]) => {
    const swatch = h("i");
    swatch.style.background = color;
    return h("span", {}, swatch, stage.replace(/_ms$/, "").replaceAll("_", " "));
  }));
}

function costCard(cost) {
  if (!cost) return h("div", { class: "card", id: "cost" }, h("strong", {}, "Cost"), h("p", { class: "muted" }, "No cost."));
  const parts = ["stt", "llm", "tts", "telephony", "analysis"];
  return h("div", { class: "card", id: "cost" }, h("strong", {}, `Cost: ${fmt.money(cost.total, cost.currency)}`),
    parts.map((p) => h("div", {}, `${p.toUpperCase()}: ${fmt.money(cost[p], cost.currency)}`)),
    h("div", {}, `Per agent turn: ${fmt.money(cost.cost_per_turn, cost.currency)}`),
    cost.unpriced ? h("div", { class: "muted" }, `Unpriced: ${cost.unpriced.join(", ")}`) : []);
}

async function callPage(id) {
  const detail = await api(`/v1/calls/${encodeURIComponent(id)}`);
  const call = detail.call;
  const timed = detail.turns.filter((t) => Object.keys(Charts.STAGE_COLORS).some((s) => t[s]));
  const analysis = detail.analysis;
  show(
    h("h1", {}, `Call ${call.room_name || call.session_id}`),
    h("div", { class: "grid" },
      h("div", { class: "card", id: "call-summary" },
        h("div", {}, `Started ${fmt.time(call.started_at)} · ${fmt.dur(call.duration_seconds)}`),
        h("div", {}, `Location: ${call.location_name || "—"} · configuration ${call.config_version ? "v" + call.config_version : "—"}`),
        h("div", {}, `Caller ${call.caller_number || "—"} · status ${call.status} · outcome ${call.outcome || "—"}`),
        detail.recording_url ? h("a", { href: detail.recording_url }, "Recording") : h("span", { class: "muted" }, "No recording")),
      h("div", { class: "card", id: "analysis" }, h("strong", {}, "Analysis"),
        analysis ? [h("p", {}, analysis.summary || ""),
                    h("div", {}, `Intent ${analysis.intent || "—"} · sentiment ${analysis.sentiment || "—"} · ` +
                      `success ${analysis.success === null ? "—" : analysis.success}`)]
          : h("p", { class: "muted" }, "Not analysed yet.")),
      h("div", { class: "card", id: "appointments" }, h("strong", {}, "Appointments"),
        detail.appointments.length ? detail.appointments.map((a) => h("div", {},
          `${a.made_by_this_call ? "Booked" : "Changed"}: ${a.service} at ${a.location}, ` +
          `${new Date(a.starts_at).toLocaleString()} (${a.status})${a.provider ? " with " + a.provider : ""}`))
          : h("p", { class: "muted" }, "None.")),
      costCard(detail.cost)),
    h("h2", {}, "Latency per turn"), legend(),
    h("div", { class: "card", id: "latency" }, timed.length ? Charts.latency(timed) : h("p", { class: "muted" }, "No latency figures.")),
    h("h2", {}, "Transcript"),
    h("div", { class: "card", id: "transcript" }, detail.turns.map((t) =>
      h("div", { class: `turn ${t.role}` }, h("span", { class: "role" }, t.role), h("span", { class: "text" }, t.content)))),
    h("h2", {}, "Events"),
    h("table", { id: "events" }, h("tbody", {}, detail.events.map((e) => h("tr", {},
      h("td", {}, fmt.time(e.occurred_at)), h("td", {}, e.event_type), h("td", {}, e.severity),
      h("td", { class: "muted" }, JSON.stringify(e.payload)))))),
  );
}

// --- dashboard -----------------------------------------------------------------------------

function rateTable(id, rows) {
  return h("table", { id }, h("thead", {}, h("tr", {}, ["", "Calls", "Booked", "Contained"].map((t) => h("th", {}, t)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, h("td", {}, r.label), h("td", {}, r.calls),
      h("td", {}, fmt.pct(r.booked, r.calls)), h("td", {}, fmt.pct(r.contained, r.calls))))));
}

// The KPI rollup's days (issue 14) summed: counts add; rates are re-derived from the counts;
// the cost per call only when every day of it was priced.
function rollupCard(rows) {
  const sum = (key) => rows.reduce((total, r) => total + r[key], 0);
  const calls = sum("calls"), answered = sum("answered");
  const priced = rows.every((r) => r.cost_per_call !== null);
  const cost = priced && calls ? rows.reduce((t, r) => t + r.cost_per_call * r.calls, 0) / calls : null;
  const overAnswered = (key) => (answered ? rows.reduce((t, r) => t + (r[key] || 0) * r.answered, 0) / answered : null);
  return h("div", { class: "card", id: "kpi-rollup" }, h("strong", {}, "KPI rollup"),
    h("div", {}, `Calls ${calls} · answered ${answered} · transferred ${sum("transferred")} · abandoned ${sum("abandoned")}`),
    h("div", {}, `Containment ${fmt.rate(overAnswered("containment_rate"))} · booking conversion ${fmt.rate(overAnswered("booking_conversion"))}`),
    h("div", {}, `Bookings ${sum("bookings")} · reschedules ${sum("reschedules")} · cancellations ${sum("cancellations")}`),
    h("div", {}, `Cost per call: ${fmt.money(cost, "USD")}${sum("unpriced_calls") ? ` (${sum("unpriced_calls")} unpriced calls)` : ""}`));
}

async function dashboardPage(params) {
  const days = params.get("days") || "30";
  const until = new Date(Date.now() + 86400000), since = new Date(until - (Number(days) + 1) * 86400000);
  const day = (d) => d.toISOString().slice(0, 10);
  const [data, rollup] = await Promise.all([
    api(`/v1/dashboard?days=${encodeURIComponent(days)}`),
    api(`/v1/kpis/daily?from=${day(since)}&to=${day(until)}`)]);
  const latency = data.latency_ms;
  show(
    h("h1", {}, `Dashboard — last ${days} days`),
    h("div", { class: "card", id: "calls-per-day" }, h("strong", {}, "Calls per day"),
      Charts.bars(data.calls_per_day.map(([day, n]) => [day.slice(5), n]), { title: "calls per day" })),
    h("div", { class: "grid" },
      h("div", { class: "card" }, h("strong", {}, "By location"), rateTable("by-location", data.by_location)),
      h("div", { class: "card" }, h("strong", {}, "By configuration version"), rateTable("by-config", data.by_config)),
      h("div", { class: "card", id: "latency-percentiles" }, h("strong", {}, `Agent latency (${data.latency_turns} turns)`),
        ["p50", "p90", "p95", "p99"].map((p) => h("div", {}, `${p}: ${fmt.ms(latency[p])}`))),
      rollupCard(rollup)),
    h("div", { class: "card", id: "peak-hours" }, h("strong", {}, "Peak hours"), Charts.heatmap(data.peak_hours)),
  );
}

// --- configurations ------------------------------------------------------------------------

function diffBlock(fields) {
  if (!fields.length) return h("p", { class: "muted" }, "The two versions are the same.");
  return fields.map((f) => [h("h2", {}, f.field), h("pre", { class: "diff" }, f.diff.split("\n").map((line) =>
    h("div", { class: line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : "" }, line)))]);
}

async function configsPage(params) {
  const versions = await api("/v1/configs");
  const output = h("div", { id: "diff" });
  const status = h("p", { id: "config-status", class: "muted" });
  const active = versions.find((v) => v.is_active);
  const choose = (name, chosen) => h("select", { name, id: `diff-${name}` },
    versions.map((v) => h("option", { value: v.id, selected: v.id === chosen }, `v${v.version}`)));
  const older = versions.find((v) => active && v.version < active.version);
  const from = choose("from", (older || versions[versions.length - 1] || {}).id);
  const to = choose("to", (active || versions[0] || {}).id);
  const act = async (path, body) => {
    try {
      const config = await api(path, { method: "POST", body });
      status.textContent = `v${config.version} is now active.`;
      await configsPage(params);
      document.getElementById("config-status").textContent = `v${config.version} is now active.`;
    } catch (error) { status.textContent = error.message; }
  };
  show(
    h("h1", {}, "Configurations"),
    h("button", { type: "button", id: "rollback", disabled: !older, onclick: () => act("/v1/configs/rollback", {}) },
      "Roll back to the previous version"),
    status,
    h("table", { id: "versions" }, h("thead", {}, h("tr", {}, ["Version", "Label", "Created", "Active", ""].map((t) => h("th", {}, t)))),
      h("tbody", {}, versions.map((v) => h("tr", { "data-version": v.version },
        h("td", {}, `v${v.version}`), h("td", {}, v.label || "—"), h("td", {}, fmt.time(v.created_at)),
        h("td", {}, v.is_active ? h("span", { class: "badge active" }, "active") : ""),
        h("td", {}, v.is_active ? "" : h("button", { type: "button", class: "plain",
          onclick: () => act(`/v1/configs/${v.id}/activate`) }, "Activate")))))),
    h("h2", {}, "Compare"),
    h("form", { class: "filters", onsubmit: async (event) => {
      event.preventDefault();
      const data = await api(`/v1/configs/diff?from=${from.value}&to=${to.value}`).catch(failure);
      if (data) output.replaceChildren(...diffBlock(data.fields).flat());
    } }, h("label", {}, "From", from), h("label", {}, "To", to), h("button", { type: "submit", id: "show-diff" }, "Diff")),
    output,
  );
}

// --- knowledge base ------------------------------------------------------------------------

const CATEGORIES = ["business_info", "hours", "policies", "services", "faq"];

function factForm(fact, onsave) {
  const f = fact || { category: "faq", title: "", content: "", tags: [], priority: 50, is_active: true };
  const fields = {
    category: h("select", { name: "category" }, CATEGORIES.map((c) => h("option", { value: c, selected: c === f.category }, c))),
    title: h("input", { name: "title", value: f.title, size: 40 }),
    content: h("textarea", { name: "content" }, f.content),
    tags: h("input", { name: "tags", value: f.tags.join(", "), size: 30 }),
    priority: h("input", { name: "priority", type: "number", min: 0, max: 100, value: f.priority }),
  };
  const message = h("span", { class: "error" });
  return h("form", { class: "card fact-form", onsubmit: async (event) => {
    event.preventDefault();
    const body = { category: fields.category.value, title: fields.title.value, content: fields.content.value,
                   tags: fields.tags.value.split(",").map((t) => t.trim()).filter(Boolean),
                   priority: Number(fields.priority.value) };
    try { await onsave(body); } catch (error) { message.textContent = error.message; }
  } }, h("div", { class: "filters" }, h("label", {}, "Category", fields.category), h("label", {}, "Title", fields.title),
    h("label", {}, "Tags", fields.tags), h("label", {}, "Priority", fields.priority)),
    h("label", {}, "Content", fields.content), h("button", { type: "submit" }, fact ? "Save" : "Add fact"), message);
}

async function knowledgePage() {
  const facts = await api("/v1/knowledge");
  const reload = () => knowledgePage().catch(failure);
  show(
    h("h1", {}, "Knowledge base"),
    factForm(null, async (body) => { await api("/v1/knowledge", { method: "POST", body }); await reload(); }),
    h("table", { id: "facts" }, h("thead", {}, h("tr", {}, ["Category", "Title", "Content", "Priority", "Active", ""].map((t) => h("th", {}, t)))),
      h("tbody", {}, facts.map((fact) => {
        const row = h("tr", { "data-id": fact.id }, h("td", {}, fact.category), h("td", {}, fact.title),
          h("td", {}, fact.content), h("td", {}, fact.priority), h("td", {}, fact.is_active ? "yes" : "no"),
          h("td", {},
            h("button", { type: "button", class: "plain", onclick: () => row.after(h("tr", {}, h("td", { colspan: 6 },
              factForm(fact, async (body) => { await api(`/v1/knowledge/${fact.id}`, { method: "PATCH", body }); await reload(); })))) }, "Edit"),
            h("button", { type: "button", class: "plain", onclick: async () => {
              await api(`/v1/knowledge/${fact.id}`, { method: "PATCH", body: { is_active: !fact.is_active } }).catch(failure);
              await reload(); } }, fact.is_active ? "Deactivate" : "Activate"),
            h("button", { type: "button", class: "plain", onclick: async () => {
              await api(`/v1/knowledge/${fact.id}`, { method: "DELETE" }).catch(failure);
              await reload(); } }, "Delete")));
        return row;
      }))),
  );
}

// --- analysis runs -------------------------------------------------------------------------

async function analysisPage() {
  const runs = await api("/v1/analysis/runs");
  const reload = () => analysisPage().catch(failure);
  const today = new Date().toISOString().slice(0, 10);
  const monthAgo = new Date(Date.now() - 30 * 86400000).toISOString().slice(0, 10);
  const form = h("form", { id: "new-run", class: "card" },
    h("strong", {}, "Analyse a period "),
    h("input", { type: "date", name: "period_from", value: monthAgo, required: true }), " to ",
    h("input", { type: "date", name: "period_to", value: today, required: true }), " ",
    h("button", { type: "submit" }, "Start run"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    await api("/v1/analysis/runs", { method: "POST", body: { period_from: data.get("period_from"),
                                                              period_to: data.get("period_to") } }).catch(failure);
    await reload();
  });
  const exportButton = (run, format, cell) => h("button", { type: "button", class: "plain", onclick: async () => {
    const made = await api(`/v1/analysis/runs/${run.id}/exports`, { method: "POST", body: { format } }).catch(failure);
    if (made) cell.append(h("a", { class: "download", href: made.download_url }, `Download ${format}`));
  } }, format.toUpperCase());
  show(
    h("h1", {}, "Analysis runs"), form,
    h("table", { id: "runs" }, h("thead", {}, h("tr", {}, ["Period", "Status", "Calls", "Analysed", "Failed", "Quality", "Reports"].map((t) => h("th", {}, t)))),
      h("tbody", {}, runs.map((run) => {
        const reports = h("td", {});
        if (run.status === "completed" || run.status === "partial") reports.append(exportButton(run, "csv", reports), exportButton(run, "pdf", reports));
        return h("tr", { class: "run-row", "data-id": run.id, "data-status": run.status },
          h("td", {}, `${run.period_from} – ${run.period_to}`), h("td", {}, run.status), h("td", {}, run.calls_total),
          h("td", {}, run.calls_analysed), h("td", {}, run.calls_failed),
          h("td", {}, run.kpis && run.kpis.avg_quality != null ? run.kpis.avg_quality : "—"), reports);
      }))),
  );
  // A run in progress is analysed in the API's background: look again shortly.
  if (runs.some((run) => run.status === "pending" || run.status === "processing")) {
    setTimeout(() => { if (location.hash.startsWith("#/analysis")) reload(); }, 1000);
  }
}

// --- routing -------------------------------------------------------------------------------

async function route() {
  const [path, queryString] = (location.hash.slice(1) || "/calls").split("?");
  const params = new URLSearchParams(queryString || "");
  // No session cookie: straight to sign-in, without a request that would fail.
  if (path === "/signin" || !cookie("fd_csrf")) return signInPage();
  try {
    const me = await api("/v1/me");
    document.getElementById("nav").hidden = false;
    document.getElementById("who").textContent = `${me.organization_name} · ${me.scope} key ${me.prefix}`;
    const parts = path.split("/").filter(Boolean);
    if (parts[0] === "calls" && parts[1]) return await callPage(parts[1]);
    if (parts[0] === "dashboard") return await dashboardPage(params);
    if (parts[0] === "configs") return await configsPage(params);
    if (parts[0] === "knowledge") return await knowledgePage();
    if (parts[0] === "analysis") return await analysisPage();
    return await callsPage(params);
  } catch (error) { failure(error); }
}

document.getElementById("signout").addEventListener("click", async () => {
  await api("/console/signout", { method: "POST" }).catch(() => null);
  location.hash = "#/signin";
});
window.addEventListener("hashchange", route);
route();
