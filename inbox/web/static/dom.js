"use strict";
// The DOM helpers the inbox and the CRM pages share: an element with attributes and children,
// every piece of data as text (never innerHTML), "on…" attributes as event listeners; and the
// interface language every page uses.

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) if (child != null && child !== false) node.append(child);
  return node;
}

// The language the pages speak: the one last chosen in the inbox (kept in this browser), else
// the user's, else the browser's. `known` is the page's table of texts per language.
function pickLanguage(userLanguage, known) {
  const stored = localStorage.getItem("lang");
  if (stored && known[stored]) return stored;
  if (userLanguage && known[userLanguage]) return userLanguage;
  return (navigator.language || "nl").toLowerCase().startsWith("nl") ? "nl" : "en";
}
