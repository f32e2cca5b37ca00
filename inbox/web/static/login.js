"use strict";
// The log-in page: e-mail and password to /api/auth/login, then back to where the user was going.
const TEXTS = {
  nl: { tagline: "Alle klantcontact in één inbox.", email: "E-mail", password: "Wachtwoord", login: "Inloggen",
    bad: "Onjuist e-mailadres of wachtwoord.", slow: "Te veel pogingen; probeer het over een minuut opnieuw.",
    missing: "Vul uw e-mailadres en wachtwoord in.", offline: "De server is niet bereikbaar.", other: "English" },
  en: { tagline: "Every customer contact in one inbox.", email: "E-mail", password: "Password", login: "Log in",
    bad: "Wrong e-mail or password.", slow: "Too many attempts; try again in a minute.",
    missing: "Fill in your e-mail address and password.", offline: "The server cannot be reached.", other: "Nederlands" },
};
let lang = localStorage.getItem("lang") || ((navigator.language || "nl").toLowerCase().startsWith("nl") ? "nl" : "en");
if (!TEXTS[lang]) lang = "en";

function translate() {
  document.documentElement.lang = lang;
  document.querySelectorAll("[data-t]").forEach((node) => { node.textContent = TEXTS[lang][node.dataset.t]; });
  document.getElementById("lang").textContent = TEXTS[lang].other;
}

function nextPath() {
  const next = new URLSearchParams(location.search).get("next") || "/";
  return next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/\\") ? next : "/";
}

document.getElementById("lang").addEventListener("click", () => {
  lang = lang === "nl" ? "en" : "nl";
  localStorage.setItem("lang", lang);
  translate();
});

document.getElementById("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const error = document.getElementById("error");
  if (!form.email.value.trim() || !form.password.value) { error.textContent = TEXTS[lang].missing; return; }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const response = await fetch("/api/auth/login", {
      method: "POST", headers: { "Content-Type": "application/json" }, credentials: "same-origin",
      body: JSON.stringify({ email: form.email.value.trim(), password: form.password.value }),
    });
    if (response.ok) { window.location.assign(nextPath()); return; }
    error.textContent = response.status === 429 ? TEXTS[lang].slow : TEXTS[lang].bad;
    form.password.select();
  } catch (_) {
    error.textContent = TEXTS[lang].offline;
  } finally {
    button.disabled = false;
  }
});

translate();
