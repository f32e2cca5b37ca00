"use strict";
// The inbox page. Plain DOM: every piece of data goes in as text (never innerHTML), every change
// goes through the REST API with the CSRF header, and /ws tells us when to refresh what.

const I18N = {
  nl: {
    reports: "Rapporten", pipeline: "Pijplijn",
    logout: "Uitloggen", searchPlaceholder: "Zoeken (/)", viewAll: "Alles", viewMine: "Mijn",
    viewUnassigned: "Niet toegewezen", status: "Status", team: "Team", channel: "Kanaal", label: "Label",
    subject: "Onderwerp", any: "Alle", more: "Meer laden", pick: "Kies een gesprek.",
    keysHelp: "j/k kiezen · enter openen · r antwoorden · e afhandelen · / zoeken",
    st_open: "Open", st_pending: "In afwachting", st_snoozed: "Gesnoozed", st_resolved: "Afgehandeld", st_all: "Alle",
    empty: "Geen gesprekken.", notFound: "Niet gevonden. Dit gesprek bestaat niet of u heeft er geen toegang toe.",
    gone: "Dit gesprek is niet meer zichtbaar voor u.", waiting: "wacht", due: "deadline", overdue: "te laat",
    dueSoon: "bijna", reply: "Antwoord", note: "Interne notitie", send: "Versturen", sendNote: "Notitie opslaan",
    assignMe: "Aan mij", assignTo: "Toewijzen aan…", unassign: "Niemand", resolve: "Afhandelen", reopen: "Heropenen",
    snooze: "Snooze…", snooze1h: "1 uur", snoozeTomorrow: "Morgen 09:00", snoozeMonday: "Maandag 09:00",
    priority: "Prioriteit", p_low: "laag", p_normal: "normaal", p_high: "hoog", p_urgent: "urgent",
    addLabel: "+ label", conversation: "Gesprek", history: "Geschiedenis", original: "Toon volledig origineel",
    hideOriginal: "Verberg origineel", source: "Bron", htmlVersion: "HTML-weergave", received: "ontvangen",
    queued: "in wachtrij", sending: "wordt verzonden", sent: "verzonden", failed: "mislukt", noteStatus: "notitie",
    internal: "Interne notitie", you: "u", form: "Formulier", call: "Telefoongesprek", recording: "Opname",
    inbound: "inkomend", outbound: "uitgaand", answered: "beantwoord", missed: "gemist", busy: "bezet",
    duration: "duur", agent: "medewerker", attachments: "Bijlagen", canned: "Standaardantwoorden…",
    saveCanned: "Standaardantwoord bewaren", manageCanned: "Standaardantwoorden beheren…", cannedMine: "Eigen",
    cannedEveryone: "Iedereen", cannedTitle: "Titel", cannedShortcut: "Snelkoppeling (/…)", cannedBody: "Tekst",
    cannedScope: "Voor", placeholders: "Invulvelden", language: "Taal", save: "Opslaan", delete: "Verwijderen",
    via: "via", to: "aan", replyHint: "Antwoord gaat via het kanaal van de klant (Ctrl+Enter verstuurt)",
    noteHint: "Alleen zichtbaar voor collega's (Ctrl+Enter slaat op)",
    contact: "Contactpersoon", relation: "Relatie", lead: "Lead", project: "Project", manager: "Accountmanager",
    abc: "Klasse", leads: "Open leads", activities: "Recente activiteiten", tasks: "Open taken",
    complaints: "Klachten", others: "Andere gesprekken", projects: "Projecten", suggestions: "Is dit…?",
    confirm: "Bevestigen", unknown: "Onbekende afzender", needsReview: "Controleren",
    g_contact: "Contactpersonen", g_relation: "Relaties", g_project: "Projecten", g_lead: "Leads",
    g_conversation: "Gesprekken", noResults: "Niets gevonden.", live: "live", offline: "niet verbonden",
    h_assign: "toegewezen", h_status: "status", h_reply: "antwoord verstuurd", h_labels: "labels",
    h_priority: "prioriteit", h_link: "gekoppeld aan contact", h_route: "gerouteerd", nobody: "niemand",
    close: "Sluiten", sla: "SLA", firstResponse: "eerste reactie", visitorTyping: "De bezoeker typt…",
  },
  en: {
    reports: "Reports", pipeline: "Pipeline",
    logout: "Log out", searchPlaceholder: "Search (/)", viewAll: "All", viewMine: "Mine",
    viewUnassigned: "Unassigned", status: "Status", team: "Team", channel: "Channel", label: "Label",
    subject: "Subject", any: "Any", more: "Load more", pick: "Pick a conversation.",
    keysHelp: "j/k select · enter open · r reply · e resolve · / search",
    st_open: "Open", st_pending: "Pending", st_snoozed: "Snoozed", st_resolved: "Resolved", st_all: "All",
    empty: "No conversations.", notFound: "Not found. This conversation does not exist or you have no access to it.",
    gone: "This conversation is no longer visible to you.", waiting: "waiting", due: "due", overdue: "overdue",
    dueSoon: "due soon", reply: "Reply", note: "Internal note", send: "Send", sendNote: "Save note",
    assignMe: "Assign to me", assignTo: "Assign to…", unassign: "Nobody", resolve: "Resolve", reopen: "Reopen",
    snooze: "Snooze…", snooze1h: "1 hour", snoozeTomorrow: "Tomorrow 09:00", snoozeMonday: "Monday 09:00",
    priority: "Priority", p_low: "low", p_normal: "normal", p_high: "high", p_urgent: "urgent",
    addLabel: "+ label", conversation: "Conversation", history: "History", original: "Show full original",
    hideOriginal: "Hide original", source: "Source", htmlVersion: "HTML view", received: "received",
    queued: "queued", sending: "sending", sent: "sent", failed: "failed", noteStatus: "note",
    internal: "Internal note", you: "you", form: "Form", call: "Phone call", recording: "Recording",
    inbound: "inbound", outbound: "outbound", answered: "answered", missed: "missed", busy: "busy",
    duration: "duration", agent: "agent", attachments: "Attachments", canned: "Canned replies…",
    saveCanned: "Save a canned reply", manageCanned: "Manage canned replies…", cannedMine: "Mine",
    cannedEveryone: "Everyone", cannedTitle: "Title", cannedShortcut: "Shortcut (/…)", cannedBody: "Text",
    cannedScope: "For", placeholders: "Placeholders", language: "Language", save: "Save", delete: "Delete",
    via: "via", to: "to", replyHint: "The reply goes out on the customer's channel (Ctrl+Enter sends)",
    noteHint: "Only colleagues see this (Ctrl+Enter saves)",
    contact: "Contact", relation: "Relation", lead: "Lead", project: "Project", manager: "Account manager",
    abc: "Class", leads: "Open leads", activities: "Recent activities", tasks: "Open tasks",
    complaints: "Complaints", others: "Other conversations", projects: "Projects", suggestions: "Is this…?",
    confirm: "Confirm", unknown: "Unknown sender", needsReview: "Check",
    g_contact: "Contacts", g_relation: "Relations", g_project: "Projects", g_lead: "Leads",
    g_conversation: "Conversations", noResults: "Nothing found.", live: "live", offline: "not connected",
    h_assign: "assigned", h_status: "status", h_reply: "reply sent", h_labels: "labels",
    h_priority: "priority", h_link: "linked to contact", h_route: "routed", nobody: "nobody",
    close: "Close", sla: "SLA", firstResponse: "first response", visitorTyping: "The visitor is typing…",
  },
};
const LOCALE = { nl: "nl-NL", en: "en-GB" };

const state = {
  lang: "nl", me: null, csrf: null, users: [], teams: [], channels: [], features: {},
  filters: { view: "all", status: "open", team: "", channel: "", label: "", q: "" },
  items: [], cursor: null, nextCursor: null, current: null, conversation: null,
  messages: [], history: [], canned: [], placeholders: [], mode: "reply", tab: "thread", socket: null, retry: 0,
  clockSkew: 0, polling: new Set(), listTimer: null, viewTimer: null,
  typingUntil: 0, typingTimer: null, typedAt: 0,
};
const TYPING_SHOWN_MS = 6000; // how long "typing…" stays without a newer sign from the visitor
const TYPING_EVERY_MS = 2000; // the agent's typing is told at most this often

const t = (key) => (I18N[state.lang] || I18N.en)[key] ?? I18N.en[key] ?? key;
const byId = (id) => document.getElementById(id);

// --- DOM helpers ----------------------------------------------------------------------------

// el(tag, attrs, ...children) comes from dom.js, shared with the CRM pages.

const SVG = "http://www.w3.org/2000/svg";
const ICON_SHAPES = {
  email: [["rect", { x: 3, y: 5, width: 18, height: 14, rx: 2 }], ["polyline", { points: "3,7 12,13 21,7" }]],
  webform: [["rect", { x: 5, y: 3, width: 14, height: 18, rx: 2 }], ["line", { x1: 8, y1: 8, x2: 16, y2: 8 }],
    ["line", { x1: 8, y1: 12, x2: 16, y2: 12 }], ["line", { x1: 8, y1: 16, x2: 13, y2: 16 }]],
  telephony: [["path", { d: "M5 4h4l2 5-2.5 1.5a11 11 0 0 0 5 5L15 13l5 2v4a2 2 0 0 1-2 2A16 16 0 0 1 3 6a2 2 0 0 1 2-2" }]],
  telegram: [["path", { d: "M21 4 3 11l6 2 2 6 3-4 5 4z" }], ["line", { x1: 9, y1: 13, x2: 21, y2: 4 }]],
  note: [["path", { d: "M4 4h12l4 4v12H4z" }], ["line", { x1: 8, y1: 12, x2: 16, y2: 12 }]],
  other: [["circle", { cx: 12, cy: 12, r: 8 }]],
};

function icon(kind, title) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", `icon icon-${ICON_SHAPES[kind] ? kind : "other"}`);
  svg.setAttribute("aria-hidden", "true");
  for (const [tag, attrs] of ICON_SHAPES[kind] || ICON_SHAPES.other) {
    const shape = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) shape.setAttribute(k, String(v));
    svg.append(shape);
  }
  const wrap = el("span", { class: "channel-icon", title: title || kind || "", "data-kind": kind || "" }, svg);
  return wrap;
}

function safeUrl(value) {
  try {
    const url = new URL(String(value), location.href);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  } catch (_) { return null; }
}

// --- time -----------------------------------------------------------------------------------

const now = () => Date.now() + state.clockSkew;

function fmtDate(iso, style = "short") {
  if (!iso) return "";
  return new Date(iso).toLocaleString(LOCALE[state.lang], { dateStyle: style, timeStyle: "short" });
}

function fmtSpan(ms) {
  const minutes = Math.max(0, Math.round(ms / 60000));
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `${hours} ${state.lang === "nl" ? "u" : "h"}`;
  return `${Math.round(hours / 24)} d`;
}

function fmtDuration(seconds) {
  if (seconds == null) return "";
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function slaState(dueAt) {
  if (!dueAt) return null;
  const left = Date.parse(dueAt) - now();
  return left <= 0 ? "breached" : left <= 3600000 ? "due_soon" : "on_track";
}

function slaBadge(dueAt) {
  const sla = slaState(dueAt);
  if (!sla) return null;
  const left = Date.parse(dueAt) - now();
  const text = sla === "breached" ? `${t("overdue")} ${fmtSpan(-left)}` : `${t("due")} ${fmtSpan(left)}`;
  return el("span", { class: `sla sla-${sla}`, title: `${t("due")} ${fmtDate(dueAt)}` }, text);
}

// --- API ------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && state.csrf) headers["X-CSRF-Token"] = state.csrf;
  let response;
  try {
    response = await fetch(path, { method, headers, credentials: "same-origin",
      body: body !== undefined ? JSON.stringify(body) : undefined });
  } catch (_) {
    throw new ApiError(0, "offline", t("offline"));
  }
  if (response.status === 401) {
    const next = location.pathname + location.search;
    window.location.assign(`/login${next !== "/" ? `?next=${encodeURIComponent(next)}` : ""}`);
    throw new ApiError(401, "unauthenticated", "log in first");
  }
  const data = (response.headers.get("content-type") || "").includes("json") ? await response.json() : null;
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(response.status, error.code || "error", error.message || response.statusText);
  }
  return data;
}

// --- language -------------------------------------------------------------------------------

function translateStatic() {
  document.documentElement.lang = state.lang;
  document.querySelectorAll("[data-t]").forEach((node) => { node.textContent = t(node.dataset.t); });
  document.querySelectorAll("[data-tp]").forEach((node) => { node.placeholder = t(node.dataset.tp); });
  byId("lang").textContent = state.lang === "nl" ? "EN" : "NL";
  byId("lang").title = state.lang === "nl" ? "English" : "Nederlands";
  setLive(document.body.dataset.live === "yes");
}

async function switchLanguage() {
  state.lang = state.lang === "nl" ? "en" : "nl";
  localStorage.setItem("lang", state.lang);
  translateStatic();
  renderList();
  if (state.current) renderConversation();
  api("POST", "/api/me/language", { language: state.lang }).catch(() => {});
}

// --- unread (per browser, until the server keeps read markers) -------------------------------

function seenKey() { return `seen:${state.me ? state.me.id : 0}`; }
function seenMap() {
  try { return JSON.parse(localStorage.getItem(seenKey()) || "{}"); } catch (_) { return {}; }
}
function markSeen(conversation) {
  const seen = seenMap();
  seen[conversation.id] = conversation.last_message_at || conversation.created_at;
  const keys = Object.keys(seen);
  if (keys.length > 2000) for (const k of keys.slice(0, keys.length - 2000)) delete seen[k];
  localStorage.setItem(seenKey(), JSON.stringify(seen));
}
function isUnread(c, seen) {
  const inbound = c.last_inbound_at;
  if (!inbound) return false;
  const at = seen[c.id];
  return !at || Date.parse(inbound) > Date.parse(at);
}

// --- the list -------------------------------------------------------------------------------

function listParams(cursor) {
  const f = state.filters;
  const params = new URLSearchParams({ limit: "50", status: f.status });
  if (f.view === "mine") params.set("mine", "true");
  if (f.view === "unassigned") params.set("unassigned", "true");
  if (f.team) params.set("team", f.team);
  if (f.channel) params.set("channel", f.channel);
  if (f.label.trim()) params.set("label", f.label.trim());
  if (f.q.trim()) params.set("q", f.q.trim());
  if (cursor) params.set("cursor", cursor);
  return params;
}

async function loadList({ more = false } = {}) {
  const params = listParams(more ? state.nextCursor : null);
  let page;
  try {
    page = await api("GET", `/api/inbox/conversations?${params}`);
  } catch (error) {
    byId("rows").replaceChildren(el("p", { class: "error" }, error.message));
    return;
  }
  if (page.server_time) state.clockSkew = Date.parse(page.server_time) - Date.now();
  state.items = more ? [...state.items, ...page.items] : page.items;
  state.nextCursor = page.next_cursor;
  if (state.cursor == null || !state.items.some((c) => c.id === state.cursor)) {
    state.cursor = state.current && state.items.some((c) => c.id === state.current) ? state.current : null;
  }
  renderList();
  sendWatch();
}

function scheduleList() {
  clearTimeout(state.listTimer);
  state.listTimer = setTimeout(() => loadList(), 250);
}

function userName(id) {
  const user = state.users.find((u) => u.id === id);
  return user ? user.name : id == null ? t("nobody") : `#${id}`;
}
function channelName(id) {
  const channel = state.channels.find((c) => c.id === id);
  return channel ? channel.name : "";
}
function initials(name) {
  return (name || "?").split(/\s+/).filter(Boolean).slice(0, 2).map((w) => w[0].toUpperCase()).join("");
}

function renderList() {
  const rows = byId("rows");
  const seen = seenMap();
  rows.replaceChildren();
  if (!state.items.length) rows.append(el("p", { class: "empty" }, t("empty")));
  for (const c of state.items) {
    const unread = isUnread(c, seen);
    const preview = c.preview ? c.preview.text : "";
    const classes = ["row", c.id === state.current && "current", c.id === state.cursor && "cursor",
      unread && "unread", `priority-${c.priority}`].filter(Boolean).join(" ");
    const row = el("a", { href: `/conversations/${c.id}`, class: classes, role: "listitem",
      "data-id": c.id, "data-status": c.status },
      icon(c.channel_kind, `${c.channel_kind || ""} · ${channelName(c.channel_id)}`),
      el("span", { class: "who" }, c.customer_name || t("unknown")),
      el("span", { class: "when" }, c.waiting_since && c.status !== "resolved"
        ? el("span", { class: "waiting", title: fmtDate(c.waiting_since) }, `${t("waiting")} ${fmtSpan(now() - Date.parse(c.waiting_since))}`)
        : el("span", {}, fmtDate(c.last_message_at || c.created_at))),
      el("span", { class: "subject" }, c.subject || "—"),
      el("span", { class: "meta" },
        c.priority !== "normal" ? el("span", { class: `badge priority ${c.priority}` }, t(`p_${c.priority}`)) : null,
        c.status !== "open" ? el("span", { class: `badge status ${c.status}` }, t(`st_${c.status}`)) : null,
        (c.labels || []).map((label) => el("span", { class: "badge label" }, label)),
        c.status !== "resolved" ? slaBadge(c.due_at) : null,
        el("span", { class: "assignee", title: userName(c.assignee_id) }, c.assignee_id ? initials(userName(c.assignee_id)) : "")),
      el("span", { class: "preview" }, preview));
    row.addEventListener("click", (event) => {
      if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
      event.preventDefault();
      openConversation(c.id, { push: true });
    });
    rows.append(row);
  }
  byId("more").hidden = !state.nextCursor;
}

// --- a conversation -------------------------------------------------------------------------

async function fetchMessages(id) {
  let items = [], cursor = null;
  for (let page = 0; page < 20; page++) {  // bounded: 20 pages of 500 messages
    const data = await api("GET", `/api/conversations/${id}/messages?limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    items = items.concat(data.items);
    cursor = data.next_cursor;
    if (!cursor) break;
  }
  return items;
}

async function openConversation(id, { push = false } = {}) {
  if (push && location.pathname !== `/conversations/${id}`) history.pushState({ id }, "", `/conversations/${id}`);
  const switching = state.current !== id;
  state.current = id;
  state.cursor = id;
  if (switching) { state.mode = "reply"; state.tab = "thread"; state.panel = null; showTyping(false); }
  renderList();
  const thread = byId("thread");
  if (switching) thread.replaceChildren(el("p", { class: "empty loading" }, "…"));
  try {
    const [conversation, messages] = await Promise.all([
      api("GET", `/api/conversations/${id}`), fetchMessages(id)]);
    if (state.current !== id) return;
    state.conversation = conversation;
    state.messages = messages;
  } catch (error) {
    if (state.current !== id) return;
    state.conversation = null;
    thread.replaceChildren(el("div", { class: "notfound", role: "alert" },
      el("h2", {}, error.status === 404 ? t("notFound") : error.message)));
    byId("panel").replaceChildren();
    document.title = "Switchboard";
    return;
  }
  markSeen(state.conversation);
  renderList();
  renderConversation({ fresh: switching });
  loadPanel(id);
  if (state.tab === "history") loadHistory(id);
}

// A list fetched while a reply was being sent may predate it: the messages shown that are newer
// than everything in the list stay (the next fetch has them).
function withNewer(id, fetched) {
  const top = fetched.reduce((most, m) => Math.max(most, m.id), 0);
  const newer = state.messages.filter((m) => m.conversation_id === id && m.id > top);
  return newer.length ? [...fetched, ...newer] : fetched;
}

async function refreshConversation(id) {
  if (state.current !== id || !state.conversation) return;
  try {
    const [conversation, messages] = await Promise.all([
      api("GET", `/api/conversations/${id}`), fetchMessages(id)]);
    if (state.current !== id) return;
    state.conversation = conversation;
    state.messages = withNewer(id, messages);
    markSeen(conversation);
    renderConversation();
    if (state.tab === "history") loadHistory(id);
  } catch (error) {
    if (error.status === 404 && state.current === id) showGone();
  }
}

function showGone() {
  state.conversation = null;
  byId("thread").replaceChildren(el("div", { class: "notfound", role: "alert" }, el("h2", {}, t("gone"))));
  byId("panel").replaceChildren();
}

function renderConversation({ fresh = false } = {}) {
  const c = state.conversation;
  if (!c) return;
  document.title = `${c.subject || "—"} · Switchboard`;
  const thread = byId("thread");
  let composer = byId("composer-box");
  if (fresh || !composer) composer = composerBox(c);
  else updateComposer(composer);
  const stick = !fresh && thread.scrollHeight - thread.scrollTop - thread.clientHeight < 40;
  const messages = el("div", { id: "messages", class: "messages", hidden: state.tab !== "thread" },
    state.messages.map(messageNode));
  const historyBox = el("div", { id: "history", class: "history", hidden: state.tab !== "history" },
    renderHistory());
  const typing = el("p", { id: "visitor-typing", class: "typing muted", "aria-live": "polite",
    hidden: state.tab !== "thread" || state.typingUntil <= Date.now() }, t("visitorTyping"));
  thread.replaceChildren(conversationHeader(c), tabs(), messages, historyBox, typing, composer);
  if (fresh || stick) messages.lastElementChild?.scrollIntoView({ block: "end" });
}

function conversationHeader(c) {
  const kind = c.channel_kind;
  return el("header", { class: "conv-head" },
    el("div", { class: "title" }, icon(kind, kind), el("h2", {}, c.subject || "—"),
      el("span", { class: `badge status ${c.status}`, id: "conv-status" }, t(`st_${c.status}`)),
      c.status !== "resolved" ? slaBadge(c.due_at) : null),
    el("div", { class: "sub muted" }, `#${c.id} · ${channelName(c.channel_id) || kind || ""}`,
      c.snoozed_until ? ` · ${t("st_snoozed")} → ${fmtDate(c.snoozed_until)}` : "",
      c.needs_review ? el("span", { class: "review" }, ` · ${t("needsReview")}: ${c.needs_review}`) : null),
    el("div", { class: "actions" }, assignSelect(c), 
      c.assignee_id !== state.me.id ? el("button", { type: "button", id: "assign-me", onclick: () => act("assign", { assignee_id: state.me.id }) }, t("assignMe")) : null,
      prioritySelect(c), snoozeSelect(),
      c.status === "resolved"
        ? el("button", { type: "button", id: "reopen", onclick: () => act("status", { status: "open" }) }, t("reopen"))
        : el("button", { type: "button", id: "resolve", class: "primary", onclick: () => act("status", { status: "resolved" }) }, t("resolve"))),
    labelsEditor(c),
    el("p", { id: "action-error", class: "error", role: "status" }));
}

function tabs() {
  const tab = (name, label) => el("button", { type: "button", role: "tab", id: `tab-${name}`,
    class: `tab${state.tab === name ? " active" : ""}`, "aria-selected": state.tab === name ? "true" : "false",
    onclick: () => {
      state.tab = name;
      byId("messages").hidden = name !== "thread";
      byId("history").hidden = name !== "history";
      document.querySelectorAll(".tabs .tab").forEach((b) => b.classList.toggle("active", b.id === `tab-${name}`));
      if (name === "history") loadHistory(state.current);
    } }, label);
  return el("div", { class: "tabs", role: "tablist" }, tab("thread", t("conversation")), tab("history", t("history")));
}

function assignSelect(c) {
  const select = el("select", { id: "assign", "aria-label": t("assignTo") },
    el("option", { value: "" }, t("assignTo")));
  const teamIds = new Set(c.team_id ? [c.team_id] : state.me.team_ids);
  const people = [...state.users].sort((a, b) =>
    (b.team_ids.some((x) => teamIds.has(x)) - a.team_ids.some((x) => teamIds.has(x))) || a.name.localeCompare(b.name));
  for (const person of people) {
    const option = el("option", { value: person.id }, person.name + (person.away ? " (away)" : ""));
    if (person.id === c.assignee_id) option.selected = true;
    select.append(option);
  }
  select.append(el("option", { value: "none" }, `— ${t("unassign")}`));
  select.addEventListener("change", () => {
    if (!select.value) return;
    act("assign", { assignee_id: select.value === "none" ? null : Number(select.value) });
  });
  return select;
}

function prioritySelect(c) {
  const select = el("select", { id: "priority", "aria-label": t("priority"), title: t("priority") },
    ["low", "normal", "high", "urgent"].map((p) => el("option", { value: p, selected: p === c.priority }, t(`p_${p}`))));
  select.addEventListener("change", () => act("priority", { priority: select.value }));
  return select;
}

function nextMorning(days, hour = 9) {
  const at = new Date();
  at.setDate(at.getDate() + days);
  at.setHours(hour, 0, 0, 0);
  return at;
}

function snoozeSelect() {
  const select = el("select", { id: "snooze", "aria-label": t("snooze") },
    el("option", { value: "" }, t("snooze")), el("option", { value: "1h" }, t("snooze1h")),
    el("option", { value: "tomorrow" }, t("snoozeTomorrow")), el("option", { value: "monday" }, t("snoozeMonday")));
  select.addEventListener("change", () => {
    const choice = select.value;
    if (!choice) return;
    const until = choice === "1h" ? new Date(Date.now() + 3600000)
      : choice === "tomorrow" ? nextMorning(1) : nextMorning(((8 - new Date().getDay()) % 7) || 7);
    act("status", { status: "snoozed", snoozed_until: until.toISOString() });
  });
  return select;
}

function labelsEditor(c) {
  const input = el("input", { type: "text", class: "label-input", placeholder: t("addLabel"),
    "aria-label": t("label"), list: "label-list", size: 8 });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && input.value.trim()) {
      event.preventDefault();
      act("labels", { add: [input.value.trim()] });
    }
  });
  return el("div", { class: "labels" }, (c.labels || []).map((label) =>
    el("span", { class: "badge label" }, label,
      el("button", { type: "button", class: "x", title: "×", "aria-label": `remove ${label}`,
        onclick: () => act("labels", { remove: [label] }) }, "×"))), input);
}

async function act(action, body) {
  const id = state.current;
  const problem = byId("action-error");
  try {
    await api("POST", `/api/conversations/${id}/${action}`, body);
  } catch (error) {
    if (problem) problem.textContent = error.message;
    return;
  }
  await Promise.all([refreshConversation(id), loadList()]);
  if (state.tab === "history") loadHistory(id);
}

// --- messages -------------------------------------------------------------------------------

function messageNode(m) {
  const meta = m.meta || {};
  const c = state.conversation || {};
  const kind = m.direction === "internal" ? "note" : m.kind === "call" ? "call" : m.kind === "form" ? "form"
    : c.channel_kind === "email" || meta.via_channel_kind === "email" ? "email" : "chat";
  const author = m.direction === "internal" || m.direction === "outbound"
    ? (m.author_id ? userName(m.author_id) : "bot") : (m.sender_name || meta.reply_address || t("unknown"));
  const head = el("header", {},
    el("strong", { class: "author" }, author),
    m.direction === "internal" ? el("span", { class: "badge note" }, t("internal")) : null,
    m.direction === "outbound" && meta.via_channel_kind
      ? el("span", { class: "via muted" }, `${t("via")} ${meta.via_channel_kind}${meta.to ? ` ${t("to")} ${meta.to}` : ""}`) : null,
    el("time", { datetime: m.sent_at, class: "muted" }, fmtDate(m.sent_at)),
    m.direction === "outbound" ? el("span", { class: `status st-${m.status}`, "data-status": m.status }, t(m.status)) : null);
  const body = [];
  if (kind === "email" && m.subject && m.subject !== c.subject) body.push(el("p", { class: "msubject" }, m.subject));
  if (kind === "call") body.push(callNode(meta.call || {}));
  if (kind === "form" && meta.fields && Object.keys(meta.fields).length) {
    body.push(el("dl", { class: "fields" }, Object.entries(meta.fields).map(([k, v]) =>
      [el("dt", {}, k), el("dd", {}, typeof v === "string" ? v : JSON.stringify(v))])));
  }
  if (m.text) body.push(el("div", { class: "text" }, m.text));
  if (m.error) body.push(el("p", { class: "error" }, m.error));
  if ((m.attachments || []).length) {
    body.push(el("ul", { class: "attachments", "aria-label": t("attachments") }, m.attachments.map((a) =>
      el("li", {}, "📎 ", a.refused ? a.filename : el("a", { href: `/api/attachments/${a.id}`, download: a.filename, class: "attachment" }, a.filename),
        ` (${Math.max(1, Math.round(a.size / 1024))} kB)${a.refused ? ` — ${a.refused}` : ""}`))));
  }
  const node = el("article", { class: `message ${m.direction} kind-${kind}`, "data-id": m.id }, head, body);
  if (m.direction === "inbound" && (meta.full_text || m.html || (kind === "email" && m.id))) node.append(originalToggle(m));
  return node;
}

function callNode(call) {
  const status = call.status ? t(call.status) : "";
  const recording = safeUrl(call.recording_url);
  return el("div", { class: `call call-${call.status || "unknown"}` }, icon("telephony"),
    el("span", {}, `${t("call")} · ${t(call.direction || "inbound")} · ${status}`),
    call.number ? el("span", { class: "number" }, call.number) : null,
    call.duration_s != null ? el("span", {}, `${t("duration")} ${fmtDuration(call.duration_s)}`) : null,
    call.agent ? el("span", {}, `${t("agent")}: ${call.agent}`) : null,
    recording ? el("a", { href: recording, target: "_blank", rel: "noopener noreferrer", class: "recording" }, `▶ ${t("recording")}`) : null);
}

function originalToggle(m) {
  const box = el("div", { class: "original", hidden: true });
  const button = el("button", { type: "button", class: "link show-original" }, t("original"));
  let loaded = false;
  button.addEventListener("click", async () => {
    if (!box.hidden) { box.hidden = true; button.textContent = t("original"); return; }
    if (!loaded) {
      box.replaceChildren(el("p", { class: "muted" }, "…"));
      try {
        const o = await api("GET", `/api/messages/${m.id}/original`);
        const parts = [el("pre", { class: "full-text" }, o.full_text || o.text || "")];
        if (o.html) {
          const frame = el("iframe", { sandbox: "", class: "html-original", title: t("htmlVersion"),
            referrerpolicy: "no-referrer", hidden: true });
          frame.srcdoc = o.html;  // sandboxed: no scripts, no same-origin, the page's CSP applies
          parts.push(el("button", { type: "button", class: "link", onclick: () => { frame.hidden = !frame.hidden; } }, t("htmlVersion")), frame);
        }
        if (o.raw) {
          const raw = el("pre", { class: "raw", hidden: true }, o.raw);
          parts.push(el("button", { type: "button", class: "link", onclick: () => { raw.hidden = !raw.hidden; } }, t("source")), raw);
        }
        box.replaceChildren(...parts);
        loaded = true;
      } catch (error) {
        box.replaceChildren(el("pre", { class: "full-text" }, (m.meta || {}).full_text || error.message));
      }
    }
    box.hidden = false;
    button.textContent = t("hideOriginal");
  });
  return el("div", { class: "original-wrap" }, button, box);
}

// --- composer -------------------------------------------------------------------------------

// Canned replies live on the server (/api/canned-replies): everyone's, the user's teams' and
// their own. Placeholders such as {{contact.first_name}} are filled in here, from the panel.

async function importBrowserCanned() {
  // Before the server kept them, canned replies were plain texts in this browser: move them over once.
  let texts = [];
  try { texts = JSON.parse(localStorage.getItem("canned") || "[]"); } catch (_) { /* nothing to move */ }
  for (const text of Array.isArray(texts) ? texts : []) {
    if (typeof text !== "string" || !text.trim()) continue;
    const body = text.replaceAll("{name}", "{{contact.name}}").replaceAll("{agent}", "{{agent.name}}")
      .replaceAll("{subject}", "{{conversation.subject}}");
    try {
      await api("POST", "/api/canned-replies", { title: firstWords(text), body });
    } catch (error) {
      if (error.status !== 422 && error.status !== 409) return;  // keep them for the next visit
    }
  }
  localStorage.removeItem("canned");
}

function firstWords(text) {
  const line = text.trim().split("\n")[0];
  return line.length > 60 ? `${line.slice(0, 57)}…` : line;
}

async function loadCanned() {
  try {
    const data = await api("GET", "/api/canned-replies");
    state.canned = data.items;
    state.placeholders = data.placeholders;
  } catch (_) { state.canned = []; }
  document.querySelectorAll("#canned").forEach(fillCannedSelect);
}

function firstWord(text) { return (text || "").trim().split(/\s+/)[0] || ""; }

function placeholderValues() {
  const c = state.conversation || {}, p = state.panel || {};
  const contact = p.contact || {}, lead = p.lead || {}, relation = p.relation || {};
  const name = contact.full_name || lead.name || "";
  return {
    "contact.first_name": contact.first_name || firstWord(name),
    "contact.last_name": contact.last_name || "",
    "contact.name": name,
    "relation.name": relation.name || lead.company || "",
    "agent.name": state.me.name,
    "agent.first_name": firstWord(state.me.name),
    "conversation.subject": c.subject || "",
  };
}

function fillTemplate(text) {
  const values = placeholderValues();
  return text.replace(/\{\{\s*([^{}]*?)\s*\}\}/g, (_, name) => values[name] ?? "");
}

function customerLanguage() {
  return (state.panel && state.panel.contact && state.panel.contact.language) || null;
}

function cannedOrder(items) {
  // The customer's language first, then the language-less ones, then the rest.
  const lang = customerLanguage() || state.lang;
  const rank = (x) => (x.language === lang ? 0 : x.language ? 2 : 1);
  return [...items].sort((a, b) => rank(a) - rank(b));
}

function cannedLabel(x) {
  return `${x.title}${x.shortcut ? `  /${x.shortcut}` : ""}${x.language ? ` (${x.language})` : ""}`;
}

function fillCannedSelect(select) {
  const groups = new Map();
  for (const x of cannedOrder(state.canned || [])) {
    const key = x.scope === "personal" ? t("cannedMine") : x.scope === "team" ? (x.team_name || t("team")) : t("cannedEveryone");
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(x);
  }
  select.replaceChildren(el("option", { value: "" }, t("canned")),
    ...[...groups].map(([label, items]) => el("optgroup", { label }, items.map((x) => el("option", { value: x.id }, cannedLabel(x))))),
    el("option", { value: "manage" }, t("manageCanned")));
}

function insertText(textarea, text, from = textarea.selectionStart, to = textarea.selectionEnd) {
  const before = textarea.value.slice(0, from), after = textarea.value.slice(to);
  const glue = before && !/\s$/.test(before) ? "\n" : "";
  textarea.value = `${before}${glue}${text}${after}`;
  const caret = before.length + glue.length + text.length;
  textarea.setSelectionRange(caret, caret);
  textarea.dispatchEvent(new Event("input"));
}

function useCanned(textarea, reply, from, to) {
  insertText(textarea, fillTemplate(reply.body), from, to);
  textarea.focus();
}

function cannedSelect(textarea) {
  const select = el("select", { id: "canned", "aria-label": t("canned") });
  fillCannedSelect(select);
  select.addEventListener("change", () => {
    const value = select.value;
    select.value = "";
    if (value === "manage") { cannedDialog(textarea); return; }
    const reply = (state.canned || []).find((x) => String(x.id) === value);
    if (reply) useCanned(textarea, reply);
  });
  return select;
}

// Typing /shortcut in the composer offers the matching replies; Enter or Tab takes one.
function slashToken(textarea) {
  const upto = textarea.value.slice(0, textarea.selectionStart);
  const match = upto.match(/(^|\s)\/([\w-]*)$/);
  return match ? { word: match[2].toLowerCase(), from: upto.length - match[2].length - 1 } : null;
}

function slashMenu(textarea) {
  const menu = el("ul", { id: "canned-suggest", class: "suggest", role: "listbox", hidden: true });
  let token = null, active = 0, shown = [];
  const close = () => { menu.hidden = true; shown = []; };
  const pick = (reply) => { close(); useCanned(textarea, reply, token.from, textarea.selectionStart); };
  const render = () => {
    menu.replaceChildren(...shown.map((x, i) => el("li", { role: "option", class: i === active ? "active" : "", "data-shortcut": x.shortcut || "",
      onmousedown: (event) => { event.preventDefault(); pick(x); } },
    el("b", {}, x.shortcut ? `/${x.shortcut}` : x.title), " ", el("span", { class: "muted" }, fillTemplate(x.body).slice(0, 80)))));
    menu.hidden = !shown.length;
  };
  textarea.addEventListener("input", () => {
    token = slashToken(textarea);
    if (!token) { close(); return; }
    const starts = (x) => x.shortcut && x.shortcut.startsWith(token.word);
    const titled = (x) => !x.shortcut && token.word && x.title.toLowerCase().startsWith(token.word);
    shown = cannedOrder((state.canned || []).filter((x) => starts(x) || titled(x))).slice(0, 8);
    active = 0;
    render();
  });
  textarea.addEventListener("keydown", (event) => {
    if (menu.hidden || event.ctrlKey || event.metaKey) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      active = (active + (event.key === "ArrowDown" ? 1 : shown.length - 1)) % shown.length;
      render();
    } else if (event.key === "Enter" || event.key === "Tab") {
      event.preventDefault();
      event.stopImmediatePropagation();
      pick(shown[active]);
    } else if (event.key === "Escape") {
      event.stopImmediatePropagation();
      close();
    }
  });
  textarea.addEventListener("blur", close);
  return menu;
}

// Save the composer's text as a reply (own, a team's for managers, everyone's for admins)
// and remove the ones you may change.
function cannedDialog(textarea) {
  byId("canned-dialog")?.remove();
  const me = state.me;
  const scopes = [el("option", { value: "personal" }, t("cannedMine"))];
  if (me.role === "manager" || me.role === "admin") {
    const teams = me.role === "admin" ? state.teams : state.teams.filter((x) => me.team_ids.includes(x.id));
    teams.forEach((x) => scopes.push(el("option", { value: `team:${x.id}` }, `${t("team")}: ${x.name}`)));
  }
  if (me.role === "admin") scopes.push(el("option", { value: "everyone" }, t("cannedEveryone")));
  const field = (label, control) => el("label", {}, el("span", {}, label), control);
  const title = el("input", { name: "title", required: true, maxlength: 200 });
  const shortcut = el("input", { name: "shortcut", maxlength: 41, placeholder: "/offerte", pattern: "/?[a-zA-Z0-9][a-zA-Z0-9_\\-]*" });
  const body = el("textarea", { name: "body", rows: 5, required: true });
  body.value = textarea.value;
  const scope = el("select", { name: "scope" }, scopes);
  const language = el("select", { name: "language" }, el("option", { value: "" }, "—"),
    el("option", { value: "nl" }, "Nederlands"), el("option", { value: "en" }, "English"));
  const problem = el("p", { class: "error", role: "alert" });
  const list = el("ul", { class: "plain canned-own" });
  const dialog = el("dialog", { id: "canned-dialog", class: "canned-dialog" });
  const renderOwn = () => list.replaceChildren(...(state.canned || []).filter((x) => x.editable).map((x) =>
    el("li", { "data-id": x.id }, el("span", {}, cannedLabel(x)), " ",
      el("button", { type: "button", class: "ghost delete", onclick: async () => {
        try { await api("DELETE", `/api/canned-replies/${x.id}`); } catch (error) { problem.textContent = error.message; return; }
        await loadCanned();
        renderOwn();
      } }, t("delete")))));
  const form = el("form", { method: "dialog" },
    el("h3", {}, t("saveCanned")),
    field(t("cannedTitle"), title), field(t("cannedShortcut"), shortcut), field(t("cannedBody"), body),
    el("p", { class: "muted hint" }, `${t("placeholders")}: ${(state.placeholders || []).map((x) => `{{${x}}}`).join(" ")}`),
    field(t("cannedScope"), scope), field(t("language"), language), problem,
    el("div", { class: "send-row" },
      el("button", { type: "button", class: "ghost", onclick: () => dialog.close() }, t("close")),
      el("button", { type: "submit", class: "primary" }, t("save"))),
    el("h3", {}, t("manageCanned")), list);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const [kind, teamId] = scope.value.split(":");
    try {
      await api("POST", "/api/canned-replies", { title: title.value.trim(), body: body.value,
        shortcut: shortcut.value.trim() || null, language: language.value || null,
        scope: kind, team_id: teamId ? Number(teamId) : null });
    } catch (error) { problem.textContent = error.message; return; }
    await loadCanned();
    dialog.close();
  });
  dialog.append(form);
  dialog.addEventListener("close", () => { dialog.remove(); textarea.focus(); });
  document.body.append(dialog);
  renderOwn();
  dialog.showModal();
  title.focus();
}

function composerBox(c) {
  const textarea = el("textarea", { id: "composer", rows: 4, "aria-label": t("reply") });
  const problem = el("p", { id: "composer-error", class: "error", role: "alert" });
  const hint = el("span", { class: "hint muted" });
  const send = el("button", { type: "button", id: "send", class: "primary" });
  const mode = (name) => el("button", { type: "button", "data-mode": name, class: `mode${state.mode === name ? " active" : ""}`,
    onclick: () => { state.mode = name; updateComposer(byId("composer-box")); textarea.focus(); } }, t(name));
  const box = el("div", { id: "composer-box", class: `composer mode-${state.mode}` },
    el("div", { class: "modes" }, mode("reply"), mode("note"), cannedSelect(textarea)),
    slashMenu(textarea), textarea, el("div", { class: "send-row" }, hint, send), problem);
  const submit = async () => {
    const text = textarea.value.trim();
    if (!text || send.disabled) return;
    const id = state.current;
    send.disabled = true;
    problem.textContent = "";
    try {
      const message = await api("POST", `/api/conversations/${id}/${state.mode === "note" ? "notes" : "messages"}`, { text });
      textarea.value = "";
      if (state.current === id && !state.messages.some((m) => m.id === message.id)) {
        state.messages.push(message);
        renderConversation();
      }
      if (message.status === "queued" || message.status === "sending") pollStatus(id, message.id);
      loadList();
    } catch (error) {
      problem.textContent = error.message;
    } finally {
      send.disabled = false;
    }
  };
  send.addEventListener("click", submit);
  textarea.addEventListener("input", () => { problem.textContent = ""; tellTyping(c); });
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); submit(); }
    if (event.key === "Escape") textarea.blur();
  });
  updateComposer(box);
  return box;
}

function updateComposer(box) {
  box.className = `composer mode-${state.mode}`;
  box.querySelectorAll("[data-mode]").forEach((b) => {
    b.classList.toggle("active", b.dataset.mode === state.mode);
    b.textContent = t(b.dataset.mode);
  });
  box.querySelector("#send").textContent = state.mode === "note" ? t("sendNote") : t("send");
  box.querySelector(".hint").textContent = state.mode === "note" ? t("noteHint") : t("replyHint");
  box.querySelector("#composer").setAttribute("aria-label", t(state.mode));
  const canned = box.querySelector("#canned");
  if (canned) fillCannedSelect(canned);
}

// A reply being written in a web chat: the visitor's widget shows "typing…" (over /ws).
function tellTyping(c) {
  const socket = state.socket;
  const now = Date.now();
  if (state.mode !== "reply" || c.channel_kind !== "webchat" || now - state.typedAt < TYPING_EVERY_MS) return;
  if (!socket || socket.readyState !== WebSocket.OPEN) return;
  state.typedAt = now;
  socket.send(JSON.stringify({ type: "typing", conversation_id: c.id }));
}

function showTyping(on) {
  clearTimeout(state.typingTimer);
  state.typingUntil = on ? Date.now() + TYPING_SHOWN_MS : 0;
  if (on) state.typingTimer = setTimeout(() => showTyping(false), TYPING_SHOWN_MS);
  const node = byId("visitor-typing");
  if (node) node.hidden = !on || state.tab !== "thread";
}

async function pollStatus(conversationId, messageId) {
  if (state.polling.has(messageId)) return;
  state.polling.add(messageId);
  try {
    for (let attempt = 0; attempt < 30; attempt++) {  // bounded: about a minute
      await new Promise((resolve) => setTimeout(resolve, Math.min(500 * (attempt + 1), 4000)));
      if (state.current !== conversationId) return;
      const messages = await fetchMessages(conversationId).catch(() => null);
      if (!messages || state.current !== conversationId) return;
      state.messages = withNewer(conversationId, messages);
      renderConversation();
      const m = messages.find((x) => x.id === messageId);
      if (!m || (m.status !== "queued" && m.status !== "sending")) return;
    }
  } finally {
    state.polling.delete(messageId);
  }
}

// --- history --------------------------------------------------------------------------------

async function loadHistory(id) {
  try {
    const rows = await api("GET", `/api/conversations/${id}/history`);
    if (state.current !== id) return;
    state.history = rows;
    const box = byId("history");
    if (box) box.replaceChildren(...renderHistory());
  } catch (_) { /* the thread shows the error */ }
}

function describe(h) {
  const d = h.data || {};
  switch (h.action) {
    case "assign": return `${t("h_assign")}: ${userName(d.before?.assignee_id)} → ${userName(d.after?.assignee_id)}`;
    case "status": return `${t("h_status")}: ${t(`st_${d.before}`)} → ${t(`st_${d.after}`)}${d.snoozed_until ? ` (${fmtDate(d.snoozed_until)})` : ""}`;
    case "reply": return t("h_reply");
    case "labels": return `${t("h_labels")}: ${(d.add || []).map((x) => `+${x}`).concat((d.remove || []).map((x) => `−${x}`)).join(" ")}`;
    case "priority": return `${t("h_priority")}: ${t(`p_${d.before}`)} → ${t(`p_${d.after}`)}`;
    case "link": return t("h_link");
    default: {
      const details = Object.entries(d).filter(([, v]) => v != null && typeof v !== "object").map(([k, v]) => `${k}: ${v}`).join(", ");
      return details ? `${h.action} (${details})` : h.action;
    }
  }
}

function renderHistory() {
  return [el("ol", { class: "history-list" }, state.history.map((h) => el("li", { "data-action": h.action },
    el("time", { class: "muted" }, fmtDate(h.created_at)), " ",
    el("strong", {}, h.actor_id ? userName(h.actor_id) : "Switchboard"), " ", describe(h))))];
}

// --- customer panel and record cards --------------------------------------------------------

async function loadPanel(id) {
  let data;
  try {
    data = await api("GET", `/api/conversations/${id}/panel`);
  } catch (error) {
    if (state.current === id) byId("panel").replaceChildren(el("p", { class: "error" }, error.message));
    return;
  }
  if (state.current !== id) return;
  state.panel = data;
  byId("panel").replaceChildren(...dashboard(data, { suggestions: data.suggestions || [] }), projectPicker(id, data.projects));
}

function projectPicker(id, projects) {
  // Link the conversation to one of the relation's projects: its messages join the timeline.
  if (!projects || !projects.length) return "";
  const current = state.conversation && state.conversation.project_id;
  const select = el("select", { id: "project-link", "aria-label": t("project") },
    el("option", { value: "" }, "—"), projects.map((p) => el("option", { value: p.id, selected: p.id === current }, p.name)));
  select.addEventListener("change", async () => {
    const body = { project_id: select.value ? Number(select.value) : null };
    try {
      await api("PUT", `/api/conversations/${id}/project`, body);
      if (state.conversation && state.current === id) state.conversation.project_id = body.project_id;
    } catch (error) { select.after(el("p", { class: "error" }, error.message)); }
  });
  return el("section", { class: "card project-link" }, el("h3", {}, t("project")), select);
}

function section(title, items, render, cls) {
  if (!items || !items.length) return null;
  return el("section", { class: `card ${cls || ""}` }, el("h3", {}, title), el("ul", {}, items.map(render)));
}

function convLink(c) {
  return el("li", {}, el("a", { href: `/conversations/${c.id}`, onclick: (event) => { event.preventDefault(); openConversation(c.id, { push: true }); } },
    icon(c.channel_kind), ` ${c.subject || `#${c.id}`}`), " ", el("span", { class: `badge status ${c.status}` }, t(`st_${c.status}`)));
}

function dashboard(d, { suggestions = [], title = null } = {}) {
  const who = d.contact, rel = d.relation, lead = d.lead;
  const out = [];
  if (title) out.push(title);
  const identity = el("section", { class: "card customer-card" });
  if (who) {
    identity.append(el("h3", { class: "customer" }, who.full_name),
      el("p", { class: "muted" }, [who.job_title, who.city].filter(Boolean).join(" · ")),
      el("ul", { class: "plain" }, [...who.emails, ...who.phones].map((x) => el("li", {}, x))));
  } else if (lead) {
    identity.append(el("h3", { class: "customer" }, lead.name || lead.company || t("unknown")),
      el("p", {}, el("span", { class: "badge lead" }, `${t("lead")} · ${lead.status}`), lead.company ? ` ${lead.company}` : ""),
      el("ul", { class: "plain" }, [...lead.emails, ...lead.phones].map((x) => el("li", {}, x))));
    const fields = Object.entries(lead.fields || {}).filter(([, v]) => typeof v === "string" && v);
    if (fields.length) identity.append(el("dl", { class: "fields" }, fields.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])));
  } else if (!rel) {
    identity.append(el("h3", { class: "customer" }, t("unknown")));
  }
  if (rel) {
    identity.append(el("div", { class: "relation" },
      el("h4", {}, el("a", { href: `/relations/${rel.id}`, class: "relation-board" }, rel.name)),
      el("p", {}, el("span", { class: `badge rstatus ${rel.status}` }, rel.status_label || rel.status),
        rel.abc_class ? el("span", { class: `badge abc abc-${rel.abc_class}`, title: t("abc") }, rel.abc_class) : null,
        rel.city ? ` ${rel.city}` : ""),
      rel.account_manager ? el("p", { class: "manager" }, `${t("manager")}: ${rel.account_manager}`) : null,
      rel.categories && rel.categories.length ? el("p", { class: "muted" }, rel.categories.join(", ")) : null,
      rel.website && safeUrl(rel.website) ? el("p", {}, el("a", { href: safeUrl(rel.website), target: "_blank", rel: "noopener noreferrer" }, rel.website)) : null));
  }
  if (identity.childElementCount) out.push(identity);
  if (suggestions.length) {
    out.push(el("section", { class: "card suggestions" }, el("h3", {}, t("suggestions")),
      el("ul", {}, suggestions.map((s) => el("li", {},
        el("span", {}, [s.contact_name, s.relation_name].filter(Boolean).join(" · ")),
        s.score != null ? el("span", { class: "muted" }, ` ${Math.round(s.score * (s.score <= 1 ? 100 : 1))}%`) : null,
        s.contact_id ? el("button", { type: "button", class: "confirm", onclick: () => confirmContact(s.contact_id) }, t("confirm")) : null)))));
  }
  out.push(section(t("tasks"), d.tasks, (x) => el("li", { class: `task sla-${x.sla || "none"}` }, x.title,
    x.due_at ? el("span", { class: "muted" }, ` · ${t("due")} ${fmtDate(x.due_at)}`) : null,
    x.assignee ? el("span", { class: "muted" }, ` · ${x.assignee.name}`) : null), "tasks"));
  out.push(section(t("complaints"), d.complaints, convLink, "complaints"));
  const otherLeads = (d.leads || []).filter((x) => who || !lead || x.id !== lead.id);
  out.push(section(t("leads"), otherLeads, (x) => el("li", {}, `${x.name || x.company || `#${x.id}`} · ${x.status}`), "leads"));
  out.push(section(t("activities"), d.activities, (a) => el("li", { class: `activity ${a.kind}` },
    icon(a.channel_kind || (a.kind === "call" ? "telephony" : a.kind === "form" ? "webform" : a.kind === "email" ? "email" : "other")),
    el("time", { class: "muted" }, ` ${fmtDate(a.occurred_at)} `),
    `${a.subject || a.summary || a.kind}${a.outcome ? ` (${t(a.outcome)})` : ""}${a.duration_s ? ` ${fmtDuration(a.duration_s)}` : ""}`), "activities"));
  out.push(section(t("projects"), d.projects, (p) => el("li", {}, el("a", { href: `/projects/${p.id}` }, p.name),
    `${p.city ? ` · ${p.city}` : ""} · ${p.status}`), "projects"));
  out.push(section(t("others"), d.conversations, convLink, "others"));
  return out.filter(Boolean);
}

async function confirmContact(contactId) {
  const id = state.current;
  try {
    await api("POST", `/api/conversations/${id}/link`, { contact_id: contactId });
  } catch (error) {
    byId("panel").prepend(el("p", { class: "error" }, error.message));
    return;
  }
  await Promise.all([refreshConversation(id), loadPanel(id), loadList()]);
}

async function showRecord(kind, recordId) {
  if (kind === "conversation") { openConversation(recordId, { push: true }); return; }
  const panel = byId("panel");
  try {
    const card = await api("GET", `/api/records/${kind}/${recordId}`);
    panel.replaceChildren(...dashboard(card, { title: el("div", { class: "record-title" },
      el("span", { class: "badge" }, t(kind)), el("h2", { class: "record" }, card.title),
      card.project ? el("p", { class: "muted" }, [card.project.city, card.project.status].filter(Boolean).join(" · ")) : null) }));
    panel.classList.add("showing-record");
  } catch (error) {
    panel.replaceChildren(el("p", { class: "error" }, error.status === 404 ? t("notFound") : error.message));
  }
}

// --- search-as-you-type ---------------------------------------------------------------------

let searchSeq = 0;
async function runSearch(q) {
  const box = byId("results");
  if (q.length < 2) { box.hidden = true; return; }
  const seq = ++searchSeq;
  let groups;
  try {
    groups = await api("GET", `/api/search?q=${encodeURIComponent(q)}&limit=8`);
  } catch (error) {
    if (seq !== searchSeq) return;
    box.replaceChildren(el("p", { class: "empty" }, error.status === 400 ? t("noResults") : error.message));
    box.hidden = false;
    return;
  }
  if (seq !== searchSeq) return;
  box.replaceChildren();
  const lists = Array.isArray(groups) ? { results: groups } : groups.results && Array.isArray(groups.results) ? { results: groups.results } : groups;
  for (const [group, hits] of Object.entries(lists || {})) {
    if (!Array.isArray(hits) || !hits.length) continue;
    box.append(el("h4", {}, t(`g_${group}`)));
    for (const hit of hits) {
      const kind = hit.type || hit.kind || group;
      const item = el("a", { class: "hit", role: "option", href: kind === "conversation" ? `/conversations/${hit.id}` : "#",
        "data-kind": kind, "data-id": hit.id },
        el("strong", {}, hit.title || hit.name || `#${hit.id}`),
        hit.subtitle ? el("span", { class: "muted" }, ` ${hit.subtitle}`) : null,
        (hit.matched || []).length ? el("small", { class: "matched" }, hit.matched.join(" · ")) : null);
      item.addEventListener("click", (event) => {
        event.preventDefault();
        box.hidden = true;
        showRecord(kind, hit.id);
      });
      box.append(item);
    }
  }
  if (!box.childElementCount) box.append(el("p", { class: "empty" }, t("noResults")));
  box.hidden = false;
}

function searchKeys(event) {
  const box = byId("results");
  const hits = [...box.querySelectorAll(".hit")];
  const index = hits.findIndex((h) => h.classList.contains("active"));
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    event.preventDefault();
    const next = hits[Math.max(0, Math.min(hits.length - 1, index + (event.key === "ArrowDown" ? 1 : -1)))];
    hits.forEach((h) => h.classList.toggle("active", h === next));
    next?.scrollIntoView({ block: "nearest" });
  } else if (event.key === "Enter") {
    event.preventDefault();
    (hits[index] || hits[0])?.click();
  } else if (event.key === "Escape") {
    box.hidden = true;
    event.target.blur();
  }
}

// --- realtime -------------------------------------------------------------------------------

function setLive(on) {
  document.body.dataset.live = on ? "yes" : "no";
  const live = byId("live");
  live.textContent = on ? `● ${t("live")}` : `○ ${t("offline")}`;
  live.className = `live ${on ? "on" : "off"}`;
}

function sendWatch() {
  const socket = state.socket;
  if (socket && socket.readyState === WebSocket.OPEN) {
    const ids = state.items.map((c) => c.id);
    if (state.current && !ids.includes(state.current)) ids.push(state.current);
    socket.send(JSON.stringify({ type: "watch", conversation_ids: ids }));
  }
}

function connect() {
  const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  state.socket = socket;
  socket.addEventListener("message", (event) => {
    let data;
    try { data = JSON.parse(event.data); } catch (_) { return; }
    if (data.type === "hello") {
      const reconnected = state.retry > 0;
      state.retry = 0;
      setLive(true);
      sendWatch();
      if (reconnected) { loadList(); if (state.current) refreshConversation(state.current); }
      return;
    }
    if (data.type === "resync") { loadList(); if (state.current) refreshConversation(state.current); return; }
    if (data.type === "conversation.hidden") {
      state.items = state.items.filter((c) => c.id !== data.conversation_id);
      renderList();
      if (data.conversation_id === state.current) refreshConversation(state.current);
      return;
    }
    if (data.type === "agent.typing") return; // for the visitor's widget
    if (data.type === "visitor.typing") {
      if (data.conversation_id === state.current) showTyping(true);
      return;
    }
    scheduleList();
    if (data.conversation_id === state.current) {
      if (data.type === "message.created") showTyping(false); // what was typed has arrived
      clearTimeout(state.viewTimer);
      state.viewTimer = setTimeout(() => { refreshConversation(state.current); loadPanel(state.current); }, 150);
    }
  });
  socket.addEventListener("close", (event) => {
    setLive(false);
    if (event.code === 4401) { window.location.assign("/login"); return; }
    state.retry += 1;
    setTimeout(connect, Math.min(30000, 1000 * 2 ** Math.min(state.retry, 5)));
  });
}

// --- keyboard -------------------------------------------------------------------------------

function keys(event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.target.matches("input, textarea, select")) return;
  if (event.key === "Enter" && event.target.closest("button, a")) return;  // the focused control's own Enter
  const index = state.items.findIndex((c) => c.id === state.cursor);
  if (event.key === "j" || event.key === "k" || event.key === "ArrowDown" || event.key === "ArrowUp") {
    if (!state.items.length) return;
    event.preventDefault();
    const step = event.key === "j" || event.key === "ArrowDown" ? 1 : -1;
    const next = state.items[index < 0 ? 0 : Math.min(state.items.length - 1, Math.max(0, index + step))];
    state.cursor = next.id;
    renderList();
    document.querySelector(`#rows .row[data-id="${next.id}"]`)?.scrollIntoView({ block: "nearest" });
  } else if (event.key === "Enter" || event.key === "o") {
    if (state.cursor) { event.preventDefault(); openConversation(state.cursor, { push: true }); }
  } else if (event.key === "r" || event.key === "n") {
    if (!state.conversation) return;
    event.preventDefault();
    state.mode = event.key === "n" ? "note" : "reply";
    if (state.tab !== "thread") byId("tab-thread")?.click();
    updateComposer(byId("composer-box"));
    byId("composer")?.focus();
  } else if (event.key === "e") {
    if (state.conversation && state.conversation.status !== "resolved") { event.preventDefault(); act("status", { status: "resolved" }); }
  } else if (event.key === "/") {
    event.preventDefault();
    const search = byId("search");
    (search.hidden ? byId("f-q") : search).focus();
  } else if (event.key === "Escape") {
    byId("results").hidden = true;
  }
}

// --- start ----------------------------------------------------------------------------------

function routeFromUrl() {
  const match = location.pathname.match(/^\/conversations\/(\d+)$/) || location.hash.match(/^#(\d+)$/);
  return match ? Number(match[1]) : null;
}

function fillFilters() {
  byId("f-team").append(...state.teams.map((team) => el("option", { value: team.id }, team.name)));
  byId("f-channel").append(...state.channels.map((c) => el("option", { value: c.id }, `${c.name} (${c.kind})`)));
  const bind = (id, key, event = "change") => byId(id).addEventListener(event, () => {
    state.filters[key] = byId(id).value;
    if (event === "input") scheduleList(); else loadList();
  });
  bind("f-status", "status");
  bind("f-team", "team");
  bind("f-channel", "channel");
  bind("f-label", "label", "input");
  bind("f-q", "q", "input");
  document.querySelectorAll("#sidebar .view").forEach((button) => button.addEventListener("click", () => {
    document.querySelectorAll("#sidebar .view").forEach((b) => b.classList.toggle("active", b === button));
    state.filters.view = button.dataset.view;
    loadList();
  }));
}

async function main() {
  const boot = await api("GET", "/api/inbox/bootstrap");
  state.me = boot.me;
  state.csrf = boot.csrf_token;
  state.users = boot.users;
  state.teams = boot.teams;
  state.channels = boot.channels;
  state.features = boot.features || {};
  state.clockSkew = Date.parse(boot.server_time) - Date.now();
  state.lang = pickLanguage(boot.language, I18N);
  byId("me").textContent = state.me.name;
  translateStatic();
  fillFilters();
  byId("lang").addEventListener("click", switchLanguage);
  byId("logout").addEventListener("click", async () => {
    try { await api("POST", "/api/auth/logout"); } finally { window.location.assign("/login"); }
  });
  byId("more").addEventListener("click", () => loadList({ more: true }));
  const search = byId("search");
  if (state.features.search) {
    search.hidden = false;
    let timer;
    search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => runSearch(search.value.trim()), 150); });
    search.addEventListener("keydown", searchKeys);
    search.addEventListener("focus", () => { if (search.value.trim().length >= 2 && byId("results").childElementCount) byId("results").hidden = false; });
    document.addEventListener("click", (event) => { if (!event.target.closest(".searchbox")) byId("results").hidden = true; });
  }
  document.addEventListener("keydown", keys);
  window.addEventListener("popstate", () => { const id = routeFromUrl(); if (id) openConversation(id); });
  await Promise.all([loadList(), importBrowserCanned().then(loadCanned)]);
  const id = routeFromUrl();
  if (id) await openConversation(id);
  connect();
  setInterval(() => { renderList(); }, 30000);  // waiting times and SLA badges move on
}

main().catch((error) => {
  if (error.status !== 401) byId("thread").replaceChildren(el("p", { class: "error" }, error.message));
});
