// Switchboard web chat widget: <script src="https://inbox.example/webchat/widget.js"
// data-channel="CHANNEL_ID" async></script>. Plain JS, no dependencies. Everything the
// visitor or an agent wrote is put in the page with textContent, never as HTML.
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.dataset.channel || window.SwitchboardChat) return;
  var channel = script.dataset.channel;
  var base = new URL(script.src).origin;
  var api = base + "/webchat/" + encodeURIComponent(channel);
  var storeKey = "switchboard-webchat:" + channel;
  var state = load();
  var settings = null;
  var socket = null;
  var transport = "none";
  var socketFailures = 0;
  var polling = false;
  var typedAt = 0;
  var cursor = 0;   // the newest message shown; a new page starts from the whole history
  var shown = {};   // message id → element
  var pending = {}; // client id → element (sent, not yet back from the server)

  function load() {
    try { return JSON.parse(localStorage.getItem(storeKey)) || {}; } catch (e) { return {}; }
  }
  function save() {
    try { localStorage.setItem(storeKey, JSON.stringify(state)); } catch (e) { /* private mode */ }
  }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function newId() {
    var bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  // --- the page: a bubble and a panel in a shadow root, so the site's CSS stays out ---------
  var host = el("div");
  host.id = "switchboard-webchat";
  host.dataset.connected = "no";
  var root = host.attachShadow({ mode: "open" });
  var style = el("style");
  style.textContent = [
    ":host{all:initial;font:14px/1.4 system-ui,sans-serif}",
    ".sb-bubble{position:fixed;right:20px;bottom:20px;width:56px;height:56px;border-radius:50%;border:0;background:#2563eb;color:#fff;font-size:13px;font-weight:600;cursor:pointer;z-index:2147483000}",
    ".sb-panel{position:fixed;right:20px;bottom:88px;width:340px;max-height:520px;display:flex;flex-direction:column;background:#fff;color:#111;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.25);z-index:2147483000;overflow:hidden}",
    "[hidden]{display:none !important}",
    ".sb-head{background:#2563eb;color:#fff;padding:10px 14px;font-weight:600}",
    ".sb-log{flex:1;overflow-y:auto;padding:10px;min-height:200px}",
    ".sb-msg{margin:4px 0;padding:6px 10px;border-radius:10px;max-width:80%;white-space:pre-wrap;word-wrap:break-word}",
    ".sb-msg.visitor{background:#dbeafe;margin-left:auto}",
    ".sb-msg.agent,.sb-msg.bot,.sb-msg.note{background:#f3f4f6}",
    ".sb-msg.pending{opacity:.6}",
    ".sb-buttons button{margin:2px;border:1px solid #2563eb;background:#fff;color:#2563eb;border-radius:8px;cursor:pointer}",
    ".sb-typing{font-size:12px;color:#666;padding:0 10px;min-height:16px}",
    ".sb-form,.sb-compose{display:flex;flex-direction:column;gap:6px;padding:10px;border-top:1px solid #eee}",
    ".sb-compose{flex-direction:row;align-items:center}",
    ".sb-compose textarea{flex:1;resize:none;height:38px}",
    ".sb-error{color:#b91c1c;font-size:12px;padding:0 10px}",
    ".sb-offline{font-size:12px;background:#fef3c7;padding:6px 10px}"
  ].join("\n");
  var bubble = el("button", "sb-bubble", "Chat");
  bubble.setAttribute("aria-label", "Chat");
  var panel = el("div", "sb-panel");
  panel.hidden = true;
  var head = el("div", "sb-head", "");
  var offlineNote = el("div", "sb-offline");
  offlineNote.hidden = true;
  var log = el("div", "sb-log");
  var typingLine = el("div", "sb-typing");
  var typingTimer = null;
  // An agent types: shown until their message comes, or a while after the last sign of it.
  function showTyping() {
    typingLine.textContent = "typing…";
    clearTimeout(typingTimer);
    typingTimer = setTimeout(function () { typingLine.textContent = ""; }, 6000);
  }
  var error = el("div", "sb-error");
  var form = el("form", "sb-form");
  var nameInput = el("input");
  nameInput.name = "name";
  nameInput.placeholder = "Your name";
  var emailInput = el("input");
  emailInput.name = "email";
  emailInput.type = "email";
  emailInput.placeholder = "Your e-mail";
  var start = el("button", "sb-start", "Start chat");
  start.type = "submit";
  form.append(nameInput, emailInput, start);
  var compose = el("div", "sb-compose");
  var input = el("textarea");
  input.placeholder = "Type a message";
  var fileInput = el("input", "sb-file");
  fileInput.type = "file";
  fileInput.hidden = true;
  var attach = el("button", "sb-attach", "File");
  attach.type = "button";
  var send = el("button", "sb-send", "Send");
  send.type = "button";
  compose.append(attach, fileInput, input, send);
  panel.append(head, offlineNote, log, typingLine, error, form, compose);
  root.append(style, bubble, panel);

  function showError(text) { error.textContent = text || ""; }

  function needsForm() {
    if (!settings) return false;
    var fields = ["name", "email"];
    if (!settings.online) return !state.email;
    for (var i = 0; i < fields.length; i++) {
      if (settings.prechat[fields[i]] === "required" && !state[fields[i]]) return true;
    }
    return !state.formDone && (settings.prechat.name !== "off" || settings.prechat.email !== "off");
  }

  function layout() {
    var ask = needsForm();
    form.hidden = !ask;
    compose.hidden = ask;
    nameInput.hidden = settings && settings.prechat.name === "off";
    emailInput.hidden = settings && settings.prechat.email === "off" && settings.online;
    nameInput.required = !!settings && settings.prechat.name === "required";
    emailInput.required = !!settings && (settings.prechat.email === "required" || !settings.online);
    offlineNote.hidden = !settings || settings.online;
  }

  // --- rendering ----------------------------------------------------------------------------
  function render(m) {
    if (shown[m.id]) return;
    var node = m.client_id && pending[m.client_id];
    if (node) {
      delete pending[m.client_id];
      node.classList.remove("pending");
    } else {
      node = el("div", "sb-msg " + m.from);
      node.textContent = m.text || "";
      (m.files || []).forEach(function (f) { node.append(el("div", "sb-file-name", "File: " + f.filename)); });
      log.append(node);
    }
    node.dataset.id = m.id;
    shown[m.id] = node;
    if (m.buttons && m.buttons.length) {
      var row = el("div", "sb-buttons");
      m.buttons.forEach(function (b) {
        var button = el("button", "", b[0]);
        button.type = "button";
        button.addEventListener("click", function () { submit(b[1], [], b[0]); });
        row.append(button);
      });
      node.after(row);
    }
    if (m.from !== "visitor") { typingLine.textContent = ""; clearTimeout(typingTimer); }
    cursor = Math.max(cursor, m.id);
    log.scrollTop = log.scrollHeight;
  }
  function renderAll(messages) {
    messages.forEach(render);
    save();
  }

  // --- sending: kept in an outbox until the server acknowledged it ---------------------------
  function submit(text, files, buttonText) {
    if (!text && !files.length) return;
    var message = { id: newId(), text: text, files: files, page: location.href,
                    name: state.name || null, email: state.email || null };
    if (buttonText) message.button_text = buttonText;
    state.outbox = (state.outbox || []).concat([message]);
    save();
    var node = el("div", "sb-msg visitor pending", text || "");
    files.forEach(function (f) { node.append(el("div", "sb-file-name", "File: " + f.name)); });
    pending[message.id] = node;
    log.append(node);
    log.scrollTop = log.scrollHeight;
    deliver(message);
  }
  function acknowledged(id, status, body) {
    if (status === 200 || status === 202) {
      state.outbox = (state.outbox || []).filter(function (m) { return m.id !== id; });
      save();
      return;
    }
    if (status === 429) { showError("Too many messages; wait a moment."); return; }
    state.outbox = (state.outbox || []).filter(function (m) { return m.id !== id; });
    save();
    showError((body && body.error) || "The message was not accepted.");
  }
  function deliver(message) {
    if (socket && socket.readyState === 1) {
      socket.send(JSON.stringify({ type: "message", id: message.id, message: message }));
      return;
    }
    request("POST", "/messages", message).then(function (r) {
      acknowledged(message.id, r.status, r.body);
    }, function () { /* offline: the outbox is sent again on reconnect */ });
  }
  function flushOutbox() { (state.outbox || []).forEach(deliver); }

  function request(method, path, body) {
    var headers = { "Content-Type": "application/json" };
    if (state.token) headers.Authorization = "Bearer " + state.token;
    return fetch(api + path, { method: method, headers: headers, mode: "cors",
                               body: body ? JSON.stringify(body) : undefined })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (b) {
          return { status: r.status, body: b };
        });
      });
  }

  // --- receiving: a websocket, or long polls when sockets do not get through ----------------
  function connect() {
    if (!state.token) return;
    if (socketFailures >= 2 || !("WebSocket" in window)) { longPoll(); return; }
    var url = api.replace(/^http/, "ws") + "/ws?token=" + encodeURIComponent(state.token) +
      "&since=" + cursor;
    var opened = false;
    socket = new WebSocket(url);
    socket.onopen = function () {
      opened = true;
      socketFailures = 0;
      transport = "ws";
      host.dataset.transport = "ws";
      host.dataset.connected = "yes";
      flushOutbox();
    };
    socket.onmessage = function (event) {
      var data;
      try { data = JSON.parse(event.data); } catch (e) { return; }
      if (data.type === "messages") renderAll(data.messages);
      else if (data.type === "ack") acknowledged(data.id, data.code, data);
      else if (data.type === "typing") showTyping();
    };
    socket.onclose = function () {
      host.dataset.connected = "no";
      socket = null;
      if (!opened) socketFailures += 1;
      setTimeout(connect, opened ? 500 : 1000 * socketFailures);
    };
  }
  function longPoll() {
    if (polling) return;
    polling = true;
    transport = "poll";
    host.dataset.transport = "poll";
    flushOutbox();
    (function next() {
      request("GET", "/messages?wait=1&since=" + cursor).then(function (r) {
        host.dataset.connected = r.status === 200 ? "yes" : "no";
        if (r.status === 200) renderAll(r.body.messages || []);
        setTimeout(next, r.status === 200 ? 0 : 3000);
      }, function () {
        host.dataset.connected = "no";
        setTimeout(next, 3000);
      });
    })();
  }

  function begin() {
    if (state.token) { connect(); return; }
    request("POST", "/visitors").then(function (r) {
      if (r.status !== 200) { showError(r.body.error || "The chat is not available."); return; }
      state.token = r.body.token;
      save();
      connect();
    });
  }

  // --- events -------------------------------------------------------------------------------
  bubble.addEventListener("click", function () {
    panel.hidden = !panel.hidden;
    if (!panel.hidden) input.focus();
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    state.name = nameInput.value.trim() || null;
    state.email = emailInput.value.trim() || null;
    state.formDone = true;
    save();
    layout();
  });
  send.addEventListener("click", function () {
    var text = input.value.trim();
    input.value = "";
    typedAt = 0; // what was typed is sent: typing again is news, however soon it comes
    showError("");
    submit(text, []);
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); send.click(); }
  });
  input.addEventListener("input", function () {
    var now = Date.now();
    if (socket && socket.readyState === 1 && now - typedAt > 2000) {
      typedAt = now;
      socket.send(JSON.stringify({ type: "typing" }));
    }
  });
  attach.addEventListener("click", function () { fileInput.click(); });
  fileInput.addEventListener("change", function () {
    var file = fileInput.files[0];
    fileInput.value = "";
    if (!file) return;
    if (settings && file.size > settings.max_file_bytes) {
      showError("The file is too large (at most " + Math.round(settings.max_file_bytes / 1024) + " KB).");
      return;
    }
    var reader = new FileReader();
    reader.onload = function () {
      var data = String(reader.result).split(",")[1] || "";
      submit(input.value.trim(), [{ name: file.name, type: file.type, data: data }]);
      input.value = "";
    };
    reader.readAsDataURL(file);
  });

  fetch(api + "/settings", { mode: "cors" }).then(function (r) { return r.json(); }).then(function (s) {
    settings = s;
    head.textContent = s.title;
    offlineNote.textContent = s.offline_text;
    log.append(el("div", "sb-msg bot greeting", s.greeting));
    layout();
    document.body.append(host);
    begin();
  }, function () { /* not allowed on this site, or the service is away: no bubble */ });

  window.SwitchboardChat = {
    open: function () { panel.hidden = false; },
    transport: function () { return transport; }
  };
})();
