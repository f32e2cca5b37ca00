"use strict";
// The pipeline board: a column per stage with its count and weighted value, a card per
// opportunity. A card moves to another stage by its stage menu or by dragging it; a move to a
// lost stage asks for the reason first. Everything goes through the REST API (CSRF header).

const I18N = {
  nl: {
    inbox: "Inbox", reports: "Rapporten", pipeline: "Pijplijn", loading: "Laden…", name: "Naam", amount: "Bedrag",
    closeDate: "Verwachte sluitdatum", add: "Toevoegen", stage: "Fase", owner: "Eigenaar",
    count: "Aantal", weighted: "Gewogen", open: "Open", lostReason: "Reden van verlies",
    confirm: "Bevestig", cancel: "Annuleer", nobody: "Niemand", owners: "Per eigenaar",
    closes: "sluit", empty: "Geen kansen.", source: "Bron",
  },
  en: {
    inbox: "Inbox", reports: "Reports", pipeline: "Pipeline", loading: "Loading…", name: "Name", amount: "Amount",
    closeDate: "Expected close date", add: "Add", stage: "Stage", owner: "Owner",
    count: "Count", weighted: "Weighted", open: "Open", lostReason: "Reason lost",
    confirm: "Confirm", cancel: "Cancel", nobody: "Nobody", owners: "Per owner",
    closes: "closes", empty: "No opportunities.", source: "Source",
  },
};
const LOCALE = { nl: "nl-NL", en: "en-GB" };
const state = { lang: "nl", csrf: null, pipelines: [], pipelineId: null, board: null };
const t = (key) => (I18N[state.lang] || I18N.en)[key] ?? I18N.en[key] ?? key;
const money = (n) => new Intl.NumberFormat(LOCALE[state.lang], { style: "currency", currency: "EUR", maximumFractionDigits: 0 }).format(n || 0);
const day = (iso) => (iso ? new Date(`${iso}T12:00:00`).toLocaleDateString(LOCALE[state.lang], { dateStyle: "medium" }) : "");

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && state.csrf) headers["X-CSRF-Token"] = state.csrf;
  const response = await fetch(path, { method, headers, credentials: "same-origin",
    body: body !== undefined ? JSON.stringify(body) : undefined });
  if (response.status === 401) {
    window.location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    throw new Error("log in first");
  }
  const data = await response.json();
  if (!response.ok) {
    const error = data.error || {};
    const fields = Array.isArray(error.details) ? error.details.map((d) => (d.loc || []).join(".")).filter(Boolean) : [];
    throw new Error(`${error.message || response.statusText}${fields.length ? ` (${fields.join(", ")})` : ""}`);
  }
  return data;
}

function showError(message) {
  document.getElementById("error").textContent = message || "";
}

function translate() {
  document.documentElement.lang = state.lang;
  for (const node of document.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
  for (const node of document.querySelectorAll("[data-tp]")) node.placeholder = t(node.dataset.tp);
  for (const node of document.querySelectorAll("[data-tt]")) node.title = t(node.dataset.tt);
}

// --- the board --------------------------------------------------------------------------------

async function loadBoard() {
  state.board = await api("GET", `/api/pipelines/${state.pipelineId}/board`);
  render();
}

function render() {
  const { pipeline, value, cards } = state.board;
  const sums = new Map(value.stages.map((s) => [s.stage_id, s]));
  const columns = pipeline.stages.map((stage) => {
    const sum = sums.get(stage.id) || { count: 0, amount: 0, weighted: 0 };
    const mine = cards.filter((c) => c.stage_id === stage.id);
    return el("section", {
      class: "stage", "data-stage": stage.id, "data-outcome": stage.outcome, "aria-label": stage.name,
      ondragover: (e) => { e.preventDefault(); e.currentTarget.classList.add("over"); },
      ondragleave: (e) => e.currentTarget.classList.remove("over"),
      ondrop: (e) => {
        e.preventDefault();
        e.currentTarget.classList.remove("over");
        const id = Number(e.dataTransfer.getData("text/plain"));
        const card = cards.find((c) => c.id === id);
        if (card && card.stage_id !== stage.id) chooseStage(card, stage.id);
      },
    },
    el("h3", {}, el("span", { class: "name" }, stage.name), el("span", { class: "muted" }, `${stage.probability}%`)),
    el("div", { class: "sum" }, `${sum.count} · ${money(sum.amount)} · ${t("weighted")} ${money(sum.weighted)}`),
    mine.map((card) => cardOf(card, pipeline)));
  });
  document.getElementById("board").replaceChildren(...columns);
  document.getElementById("totals").textContent =
    `${t("open")}: ${money(value.open_amount)} · ${t("weighted")}: ${money(value.open_weighted)}`;
  document.getElementById("owners").replaceChildren(
    el("h3", {}, t("owners")),
    el("table", {},
      el("tr", {}, [t("owner"), t("count"), t("amount"), t("weighted")].map((h) => el("th", {}, h))),
      value.owners.map((o) => el("tr", { class: "owner" },
        el("td", {}, o.name || t("nobody")), el("td", {}, String(o.count)),
        el("td", {}, money(o.amount)), el("td", {}, money(o.weighted))))));
}

function cardOf(card, pipeline) {
  const node = el("article", {
    class: "opp", draggable: "true", "data-id": card.id, "data-status": card.status,
    ondragstart: (e) => e.dataTransfer.setData("text/plain", String(card.id)),
  },
  el("div", { class: "title" }, card.name),
  el("div", { class: "meta" }, [card.relation_name, card.contact_name].filter(Boolean).join(" · ")),
  el("div", { class: "amount" }, `${money(card.amount)} · ${card.probability}%`),
  el("div", { class: "meta" }, [card.owner_name, card.expected_close_date && `${t("closes")} ${day(card.expected_close_date)}`].filter(Boolean).join(" · ")),
  card.lost_reason ? el("div", { class: "reason" }, card.lost_reason) : null,
  el("select", {
    class: "stage-pick", "aria-label": t("stage"),
    onchange: (e) => chooseStage(card, Number(e.target.value)),
  }, pipeline.stages.map((s) => el("option", { value: s.id, selected: s.id === card.stage_id }, s.name))));
  return node;
}

function chooseStage(card, stageId) {
  const stage = state.board.pipeline.stages.find((s) => s.id === stageId);
  if (stage.outcome !== "lost") return move(card, { stage_id: stageId });
  // A lost deal keeps its reason: ask for it on the card.
  const node = document.querySelector(`.opp[data-id="${card.id}"]`);
  const reason = el("input", { name: "lost_reason", maxlength: 500, placeholder: t("lostReason"), "aria-label": t("lostReason") });
  const form = el("form", { class: "lost", onsubmit: (e) => { e.preventDefault(); move(card, { stage_id: stageId, lost_reason: reason.value || null }); } },
    reason, el("button", { type: "submit", class: "primary" }, t("confirm")),
    el("button", { type: "button", onclick: render }, t("cancel")));
  node.append(form);
  reason.focus();
}

async function move(card, changes) {
  showError("");
  try {
    await api("PATCH", `/api/opportunities/${card.id}`, changes);
  } catch (error) {
    showError(error.message);
  }
  await loadBoard();
}

async function addOpportunity(e) {
  e.preventDefault();
  const form = e.target;
  const field = (name) => form.elements.namedItem(name).value;
  const body = { name: field("name").trim(), pipeline_id: state.pipelineId };
  if (field("amount")) body.amount = field("amount");
  if (field("expected_close_date")) body.expected_close_date = field("expected_close_date");
  if (field("source")) body.source = field("source");
  showError("");
  try {
    await api("POST", "/api/opportunities", body);
    form.reset();
  } catch (error) {
    showError(error.message);
  }
  await loadBoard();
}

async function start() {
  const boot = await api("GET", "/api/inbox/bootstrap");
  state.lang = pickLanguage(boot.language, I18N);
  state.csrf = boot.csrf_token;
  document.getElementById("me").textContent = boot.me.name;
  translate();
  state.pipelines = (await api("GET", "/api/pipelines")).items;
  const asked = Number(new URLSearchParams(location.search).get("pipeline"));
  state.pipelineId = (state.pipelines.find((p) => p.id === asked) || state.pipelines[0]).id;
  const pick = document.getElementById("pipeline");
  pick.replaceChildren(...state.pipelines.map((p) => el("option", { value: p.id, selected: p.id === state.pipelineId }, p.name)));
  pick.addEventListener("change", async () => {
    state.pipelineId = Number(pick.value);
    history.replaceState(null, "", `/pipeline?pipeline=${state.pipelineId}`);
    await loadBoard();
  });
  // The lead sources are a configurable list: the dropdown offers what an administrator set.
  const sources = await api("GET", "/api/settings/lists/lead_sources");
  document.querySelector("#new select[name=source]").append(
    ...sources.items.map((i) => el("option", { value: i.code }, i.label)));
  document.getElementById("new").addEventListener("submit", addOpportunity);
  await loadBoard();
  document.body.dataset.ready = "yes";
}

start().catch((error) => showError(error.message));
