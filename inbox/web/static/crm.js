"use strict";
// The relation dashboard and the reports pages. Plain DOM, data always as text; the charts are
// SVG drawn by the server (GET /api/reports/{name}?format=svg), so no charting library.

const I18N = {
  nl: {
    inbox: "Inbox", reports: "Rapporten", loading: "Laden…", notFound: "Niet gevonden.",
    contacts: "Contactpersonen", opportunities: "Open kansen", tasks: "Open taken",
    activities: "Laatste activiteiten", complaints: "Klachten", projects: "Projecten",
    links: "Gekoppelde relaties", manager: "Accountmanager", abc: "Klasse", openValue: "Open waarde",
    weighted: "Gewogen waarde", stage: "Fase", amount: "Bedrag", probability: "Kans", name: "Naam",
    none: "Geen.", due: "deadline", from: "Van", to: "Tot en met", team: "Team", allTeams: "Alle teams",
    interval: "Per", day: "dag", week: "week", month: "maand", show: "Toon", csv: "CSV",
    link_to: "→", link_from: "←", timeline: "Tijdlijn", more: "Meer", relation: "Relatie",
    k_activity: "activiteit", k_message: "bericht", k_call: "gesprek", k_task: "taak", k_document: "document",
    pipeline: "Pijplijn",
    // codes the API answers with, shown as words
    st_open: "Open", st_pending: "In afwachting", st_snoozed: "Gesnoozed", st_resolved: "Afgehandeld",
    ps_open: "Lopend", ps_on_hold: "On hold", ps_closed: "Afgesloten",
    c_email: "e-mail", c_webform: "webformulier", c_telephony: "telefoon", c_whatsapp: "WhatsApp",
    c_telegram: "Telegram", c_webchat: "webchat", c_call: "gesprek", c_message: "bericht",
    c_form: "formulier", c_note: "notitie", c_meeting: "afspraak",
    s_received: "ontvangen", s_pending: "in de wachtrij", s_sent: "verzonden", s_delivered: "afgeleverd",
    s_read: "gelezen", s_failed: "mislukt", s_answered: "beantwoord", s_missed: "gemist", s_busy: "in gesprek",
    s_voicemail: "voicemail", s_open: "open", s_done: "gedaan", s_cancelled: "geannuleerd",
    s_appointment: "afspraak gemaakt", s_callback: "terugbellen", s_no_interest: "geen interesse",
  },
  en: {
    inbox: "Inbox", reports: "Reports", loading: "Loading…", notFound: "Not found.",
    contacts: "Contacts", opportunities: "Open opportunities", tasks: "Open tasks",
    activities: "Last activities", complaints: "Complaints", projects: "Projects",
    links: "Linked relations", manager: "Account manager", abc: "Class", openValue: "Open value",
    weighted: "Weighted value", stage: "Stage", amount: "Amount", probability: "Probability", name: "Name",
    none: "None.", due: "due", from: "From", to: "To", team: "Team", allTeams: "All teams",
    interval: "Per", day: "day", week: "week", month: "month", show: "Show", csv: "CSV",
    link_to: "→", link_from: "←", timeline: "Timeline", more: "More", relation: "Relation",
    k_activity: "activity", k_message: "message", k_call: "call", k_task: "task", k_document: "document",
    pipeline: "Pipeline",
    st_open: "Open", st_pending: "Pending", st_snoozed: "Snoozed", st_resolved: "Resolved",
    ps_open: "Running", ps_on_hold: "On hold", ps_closed: "Closed",
    c_email: "e-mail", c_webform: "web form", c_telephony: "phone", c_whatsapp: "WhatsApp",
    c_telegram: "Telegram", c_webchat: "web chat", c_call: "call", c_message: "message",
    c_form: "form", c_note: "note", c_meeting: "meeting",
    s_received: "received", s_pending: "queued", s_sent: "sent", s_delivered: "delivered",
    s_read: "read", s_failed: "failed", s_answered: "answered", s_missed: "missed", s_busy: "busy",
    s_voicemail: "voicemail", s_open: "open", s_done: "done", s_cancelled: "cancelled",
    s_appointment: "appointment made", s_callback: "call back", s_no_interest: "no interest",
  },
};
const LOCALE = { nl: "nl-NL", en: "en-GB" };
let lang = "nl";
const t = (key) => (I18N[lang] || I18N.en)[key] ?? I18N.en[key] ?? key;
// A code from the API (a status, a channel or activity kind) in words; an unknown one as it is.
const word = (prefix, code) => (code ? ((I18N[lang] || I18N.en)[`${prefix}_${code}`] ?? code) : "");

async function getJson(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  if (response.status === 401) {
    window.location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    throw new Error("log in first");
  }
  const data = await response.json();
  if (!response.ok) throw new Error((data.error && data.error.message) || response.statusText);
  return data;
}

const fmtDate = (iso) => (iso ? new Date(iso).toLocaleString(LOCALE[lang], { dateStyle: "short", timeStyle: "short" }) : "");
const money = (n) => new Intl.NumberFormat(LOCALE[lang], { style: "currency", currency: "EUR", maximumFractionDigits: 0 }).format(n || 0);

function translate() {
  document.documentElement.lang = lang;
  for (const node of document.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
}

function card(title, cls, items, render) {
  return el("section", { class: `card ${cls}` }, el("h3", {}, title),
    items.length ? el("ul", {}, items.map(render)) : el("p", { class: "muted" }, t("none")));
}

// --- the relation dashboard -------------------------------------------------------------------

async function recordData(path) {
  // The record this page shows (its id is the last part of the address), or null after saying why.
  try {
    return await getJson(path.replace("{id}", location.pathname.split("/").pop()));
  } catch (error) {
    document.getElementById("main").replaceChildren(el("p", { class: "error" }, `${t("notFound")} ${error.message}`));
    return null;
  }
}

async function relationPage() {
  const main = document.getElementById("main");
  const d = await recordData("/api/relations/{id}/dashboard");
  if (!d) return;
  const r = d.relation;
  document.title = `Switchboard · ${r.name}`;
  const head = el("section", { class: "card board-head" }, el("h1", {}, r.name),
    el("div", { class: "facts" },
      el("span", { class: `badge rstatus ${r.status}` }, r.status_label || r.status),
      r.abc_class ? el("span", { class: `badge abc abc-${r.abc_class}`, title: t("abc") }, r.abc_class) : null,
      r.account_manager ? el("span", { class: "manager" }, `${t("manager")}: ${r.account_manager}`) : null,
      r.city ? el("span", { class: "muted" }, r.city) : null,
      r.categories.length ? el("span", { class: "muted" }, r.categories.join(", ")) : null));
  const opportunities = el("section", { class: "card opportunities" }, el("h3", {}, t("opportunities")),
    el("div", { class: "totals" },
      el("div", {}, el("span", { class: "muted" }, t("openValue")), el("strong", { class: "open-value" }, money(d.open_value))),
      el("div", {}, el("span", { class: "muted" }, t("weighted")), el("strong", { class: "weighted-value" }, money(d.weighted_value)))),
    d.opportunities.length ? el("table", { class: "grid" },
      el("tr", {}, el("th", {}, t("name")), el("th", {}, t("stage")), el("th", { class: "num" }, t("amount")),
        el("th", { class: "num" }, t("probability")), el("th", { class: "num" }, t("weighted"))),
      d.opportunities.map((o) => el("tr", {}, el("td", {}, o.name), el("td", {}, o.stage),
        el("td", { class: "num" }, money(o.amount)), el("td", { class: "num" }, `${o.probability}%`),
        el("td", { class: "num" }, money(o.weighted))))) : el("p", { class: "muted" }, t("none")));
  main.replaceChildren(head, el("div", { class: "board" },
    opportunities,
    card(t("contacts"), "contacts", d.contacts, (c) => el("li", {}, el("strong", {}, c.full_name),
      c.job_title ? ` · ${c.job_title}` : "", el("br"), el("span", { class: "muted" }, [...c.emails, ...c.phones].join(" · ")))),
    card(t("tasks"), "tasks", d.tasks, (x) => el("li", { class: `due-${x.sla || "none"}` }, x.title,
      x.due_at ? el("span", { class: "muted" }, ` · ${t("due")} ${fmtDate(x.due_at)}`) : null,
      x.assignee ? el("span", { class: "muted" }, ` · ${x.assignee.name}`) : null)),
    card(t("activities"), "activities", d.activities, (a) => el("li", { class: `act-${a.kind}` },
      el("time", { class: "muted" }, `${fmtDate(a.occurred_at)} `), `${word("c", a.channel_kind || a.kind)} · ${a.subject || a.summary || word("c", a.kind)}`)),
    card(t("complaints"), "complaints", d.complaints, (c) => el("li", {},
      el("a", { href: `/conversations/${c.id}` }, c.subject || `#${c.id}`), ` · ${word("st", c.status)}`)),
    card(t("projects"), "projects", d.projects, (p) => el("li", {},
      el("a", { href: `/projects/${p.id}` }, p.name), `${p.city ? ` · ${p.city}` : ""} · ${word("ps", p.status)}`)),
    card(t("links"), "links", d.links, (x) => el("li", {}, `${t(`link_${x.direction}`)} ${x.kind}: `,
      el("a", { href: `/relations/${x.id}` }, x.name), x.abc_class ? ` (${x.abc_class})` : ""))));
}

// --- a project and its timeline ---------------------------------------------------------------

function timelineItem(i) {
  const what = i.conversation_id && i.kind !== "task"
    ? el("a", { href: `/conversations/${i.conversation_id}` }, i.title || `#${i.id}`)
    : el("span", {}, i.title || `#${i.id}`);
  const details = [
    word("c", i.channel_kind), word("s", i.status), i.duration_s ? `${Math.round(i.duration_s / 60)} min` : null,
    i.due_at ? `${t("due")} ${fmtDate(i.due_at)}` : null,
    i.size != null ? `${Math.max(1, Math.round(i.size / 1024))} kB` : null,
  ].filter(Boolean).join(" · ");
  return el("li", { class: `item kind-${i.kind}`, "data-kind": i.kind },
    el("time", { class: "muted" }, fmtDate(i.at)), " ", el("span", { class: "badge" }, t(`k_${i.kind}`)), " ", what,
    details ? el("span", { class: "muted" }, ` · ${details}`) : null,
    i.summary ? el("div", { class: "muted summary" }, i.summary) : null);
}

async function projectPage() {
  const main = document.getElementById("main");
  const page = await recordData("/api/projects/{id}/timeline");
  if (!page) return;
  const p = page.project;
  const id = p.id;
  document.title = `Switchboard · ${p.name}`;
  const list = el("ul", { class: "timeline" }, page.items.map(timelineItem));
  const more = el("button", { type: "button", class: "ghost", hidden: !page.next_cursor }, t("more"));
  let cursor = page.next_cursor;
  more.addEventListener("click", async () => {
    const next = await getJson(`/api/projects/${id}/timeline?before=${encodeURIComponent(cursor)}`);
    list.append(...next.items.map(timelineItem));
    cursor = next.next_cursor;
    more.hidden = !cursor;
  });
  main.replaceChildren(
    el("section", { class: "card board-head" }, el("h1", {}, p.name),
      el("div", { class: "facts" }, el("span", { class: "badge" }, word("ps", p.status)),
        p.relation_id ? el("a", { href: `/relations/${p.relation_id}` }, t("relation")) : null,
        p.city ? el("span", { class: "muted" }, p.city) : null,
        p.starts_on ? el("span", { class: "muted" }, `${p.starts_on} – ${p.ends_on || ""}`) : null),
      p.description ? el("p", {}, p.description) : null),
    el("section", { class: "card" }, el("h3", {}, t("timeline")), list, more));
}

// --- reports ----------------------------------------------------------------------------------

const isoDay = (d) => d.toISOString().slice(0, 10);

async function reportsPage(boot) {
  const form = document.getElementById("filters");
  const params = new URLSearchParams(location.search);
  const today = new Date();
  form.elements.to.value = params.get("to") || isoDay(today);
  form.elements.from.value = params.get("from") || isoDay(new Date(today.getTime() - 29 * 86400000));
  form.elements.interval.value = params.get("interval") || "day";
  const visible = boot.me.role === "admin" ? boot.teams : boot.teams.filter((x) => boot.me.team_ids.includes(x.id));
  for (const team of visible) form.elements.team.append(el("option", { value: team.id }, team.name));
  form.elements.team.value = params.get("team") || "";
  const reports = await getJson(`/api/reports?lang=${lang}`);
  const draw = () => {
    const query = new URLSearchParams();
    for (const name of ["from", "to", "team", "interval"]) if (form.elements[name].value) query.set(name, form.elements[name].value);
    history.replaceState(null, "", `/reports?${query}`);
    document.getElementById("charts").replaceChildren(...reports.map((r) => {
      const svg = new URLSearchParams(query); svg.set("format", "svg"); svg.set("lang", lang);
      const csv = new URLSearchParams(query); csv.set("format", "csv");
      return el("figure", { class: "card chart", "data-report": r.name },
        el("figcaption", {}, el("span", {}, r.title), el("a", { href: `/api/reports/${r.name}?${csv}`, download: `${r.name}.csv` }, t("csv"))),
        el("img", { src: `/api/reports/${r.name}?${svg}`, alt: r.title, width: 720, height: 300 }));
    }));
  };
  form.addEventListener("submit", (event) => { event.preventDefault(); draw(); });
  draw();
}

async function main() {
  let boot;
  try {
    boot = await getJson("/api/inbox/bootstrap");
  } catch (_) { return; }
  lang = pickLanguage(boot.language, I18N);
  translate();
  const path = location.pathname;
  if (path.startsWith("/relations/")) await relationPage();
  else if (path.startsWith("/projects/")) await projectPage();
  else await reportsPage(boot);
}

main();
