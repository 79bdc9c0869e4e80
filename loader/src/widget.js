// Porthole's loader: one <script> tag draws a launcher in a shadow
// root and opens the chat in an iframe. It touches nothing else on the host
// page: one global (Porthole), no global handlers overwritten, no styles
// outside its shadow root. Filled in by the loader crate (the values below
// in double underscores); see loader/src/lib.rs.
(function (w, d) {
  var ORIGIN = "__ORIGIN__", V = +"__VERSION__", MQ = "(max-width: 640px)", GRACE = 8000;
  var me = d.currentScript;
  var prev = w.Porthole;
  if (prev && prev.v) { prev.add(me); return; }
  var queue = (prev && prev.q) || [];
  var widgets = [], handlers = {};

  function emit(name, data) {
    (handlers[name] || []).forEach(function (f) { try { f(data); } catch (e) { setTimeout(function () { throw e; }); } });
  }

  function Widget(el, settings) {
    var base = ORIGIN || new URL(el && el.src || "", location.href).origin;
    var ds = (el && el.dataset) || {};
    var id = ds.widgetId || settings.widgetId, key = ds.key || settings.key;
    if (!id || !/^[A-Za-z0-9_-]{1,64}$/.test(id)) { console.warn("Porthole: data-widget-id is missing or invalid"); return; }
    var self = this, side = (ds.position || settings.position) === "left" ? "left" : "right";
    var color = ds.color || settings.color || "#4f46e5";
    if (!/^#[0-9a-fA-F]{6}$/.test(color)) color = "#4f46e5";
    var host = d.createElement("porthole-widget");
    var root = host.attachShadow({ mode: "open" });
    // The host hangs off <html>, outside <body>, so the page's body zoom and
    // transforms never reach it; the root's own zoom is undone here.
    var zoom = parseFloat(getComputedStyle(d.documentElement).zoom) || 1;
    var css = ":host{all:initial!important;zoom:" + 1 / zoom + "!important;position:fixed!important;z-index:2147483000!important;bottom:0!important;" + side + ":0!important;display:block!important;width:0!important;height:0!important;visibility:visible!important;opacity:1!important;transform:none!important}" +
      "button{all:initial;position:fixed;bottom:max(20px,env(safe-area-inset-bottom));" + side + ":20px;width:56px;height:56px;border-radius:50%;background:" + color + ";color:#fff;cursor:pointer;display:grid;place-items:center;box-shadow:0 6px 20px rgba(0,0,0,.25);transition:transform .2s}" +
      "button:hover{transform:scale(1.06)}button:focus-visible{outline:3px solid " + color + ";outline-offset:3px}" +
      "svg{width:26px;height:26px;fill:none;stroke:currentColor;stroke-width:2;stroke-linecap:round;stroke-linejoin:round}" +
      "b{all:initial;position:absolute;top:-2px;right:-2px;min-width:20px;height:20px;padding:0 5px;box-sizing:border-box;border-radius:10px;background:#dc2626;color:#fff;font:700 12px/20px system-ui,sans-serif;text-align:center}b[hidden]{display:none}" +
      "div{all:initial;position:fixed;bottom:88px;" + side + ":20px;width:380px;height:min(640px,calc(100vh - 110px));border-radius:16px;overflow:hidden;box-shadow:0 12px 40px rgba(0,0,0,.3);background:#fff;display:none;opacity:0;transform:translateY(12px);transition:opacity .2s,transform .2s}" +
      "div.open{display:block}div.shown{opacity:1;transform:none}" +
      "iframe{all:initial;display:block;width:100%;height:100%;border:0}" +
      "@media " + MQ + "{div{inset:0;width:100%;height:var(--vh,100%);border-radius:0;bottom:auto;padding:env(safe-area-inset-top) env(safe-area-inset-right) 0 env(safe-area-inset-left);box-sizing:border-box}div.open~button{display:none}}" +
      "@media (prefers-reduced-motion:reduce){button,div{transition:none}}";
    try { var sheet = new CSSStyleSheet(); sheet.replaceSync(css); root.adoptedStyleSheets = [sheet]; }
    catch (e) { var st = d.createElement("style"); st.textContent = css; root.appendChild(st); }
    var panel = d.createElement("div"), button = d.createElement("button"), badge = d.createElement("b");
    var iconChat = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M21 12a8 8 0 0 1-11.6 7.1L4 21l1.9-5.4A8 8 0 1 1 21 12z"/></svg>';
    var iconClose = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M6 6l12 12M18 6L6 18"/></svg>';
    var frame = null, port = null, open = false, unread = 0, pending = [], savedStyle, giveUp;
    // The launcher's labels, open and close; the panel's hello brings them
    // in its language.
    var labels = ["Open chat", "Close chat"];
    var mq = w.matchMedia(MQ);
    function draw() {
      button.innerHTML = open ? iconClose : iconChat; button.appendChild(badge);
      button.setAttribute("aria-label", labels[+open]);
      button.setAttribute("aria-expanded", open);
    }
    button.type = "button"; badge.hidden = true; draw();
    root.appendChild(panel); root.appendChild(button);

    function load() {
      if (frame) return;
      frame = d.createElement("iframe");
      frame.title = "Chat";
      frame.allow = "clipboard-write";
      // The visitor's languages, so the panel speaks the first it can.
      frame.src = base + "/widget/" + encodeURIComponent(id) + "?key=" + encodeURIComponent(key || "") +
        "&lang=" + encodeURIComponent(navigator.languages.slice(0, 5));
      // A frame the browser refused (a site not in the widget's allowed
      // sites, a wrong id or key, the server down) still fires load, but
      // never says hello: then take the launcher away rather than leave the
      // visitor an empty panel. The wasm is preloaded, so a live panel says
      // hello well within the grace after load.
      frame.addEventListener("load", function () {
        if (!port && !giveUp) giveUp = setTimeout(fail, GRACE);
      });
      panel.appendChild(frame);
    }
    function fail() {
      console.warn("Porthole: widget " + id + " did not start; check its id, key and allowed sites (" + location.origin + ")");
      self.destroy();
      widgets.splice(widgets.indexOf(self), 1);
      emit("error", { widget: id, code: "not_started" });
    }
    // Until the iframe has said hello, messages wait in order.
    function post(msg) {
      msg.v = V;
      if (port) { port.postMessage(msg); return; }
      pending.push(msg);
    }
    function fit() {
      var vv = w.visualViewport;
      panel.style.setProperty("--vh", (vv ? vv.height : w.innerHeight) + "px");
    }
    // On phones the panel covers the page: keep the page from scrolling
    // behind it, and put back exactly what was there.
    function lockScroll(on) {
      var el = d.documentElement;
      if (on) {
        if (mq.matches && savedStyle === undefined) { savedStyle = el.getAttribute("style"); el.style.overflow = "hidden"; }
        return;
      }
      if (savedStyle === undefined) return;
      savedStyle === null ? el.removeAttribute("style") : el.setAttribute("style", savedStyle);
      savedStyle = undefined;
    }
    function setOpen(v, why) {
      if (v === open) return;
      open = v; load();
      panel.className = v ? "open" : "";
      if (v) { fit(); requestAnimationFrame(function () { requestAnimationFrame(function () { panel.className = "open shown"; }); }); unread = 0; badge.hidden = true; }
      draw();
      lockScroll(v);
      post({ type: v ? "open" : "close" });
      if (!v && why !== "api") button.focus();
      emit(v ? "open" : "close", { widget: id });
    }
    function onMessage(e) {
      // Only our iframe's window, at our exact origin, and only the hello.
      if (!frame || e.source !== frame.contentWindow || e.origin !== base) return;
      var m = e.data;
      if (!m || m.type !== "ready" || m.v !== V || port) return;
      clearTimeout(giveUp);
      if (m.open && m.close) { labels = [String(m.open), String(m.close)]; draw(); frame.title = String(m.title || "Chat"); }
      var ch = new MessageChannel();
      port = ch.port1;
      port.onmessage = onPort;
      frame.contentWindow.postMessage({ type: "connect", v: V }, base, [ch.port2]);
      pending.splice(0).forEach(post);
      emit("ready", { widget: id });
    }
    function onPort(e) {
      var m = e.data;
      if (!m || m.v !== V || typeof m.type !== "string") return;
      if (m.type === "close") { setOpen(false); return; }
      if (typeof m.text !== "string") return;
      if (m.type === "message") { emit("message", { widget: id, text: m.text }); return; }
      if (m.type !== "answer") return;
      if (!open) { unread++; badge.textContent = unread > 9 ? "9+" : String(unread); badge.hidden = false; }
      emit("answer", { widget: id, text: m.text });
    }
    function onKey(e) { if (e.key === "Escape" && open) setOpen(false); }
    function onIdle() { load(); }
    button.addEventListener("click", function () { setOpen(!open); });
    button.addEventListener("pointerenter", load);
    button.addEventListener("focus", load);
    root.addEventListener("keydown", onKey);
    w.addEventListener("message", onMessage);
    if (w.visualViewport) w.visualViewport.addEventListener("resize", fit);
    // Load the iframe when the browser is idle, so the first open is instant.
    var cancelIdle = w.requestIdleCallback
      ? (function (h) { return function () { w.cancelIdleCallback(h); }; })(w.requestIdleCallback(onIdle, { timeout: 3000 }))
      : (function (h) { return function () { clearTimeout(h); }; })(setTimeout(onIdle, 1500));
    d.documentElement.appendChild(host);
    if ((ds.open || settings.open) === "true" || settings.open === true) setOpen(true, "api");

    self.id = id;
    self.open = function () { setOpen(true, "api"); };
    self.close = function () { setOpen(false, "api"); };
    self.toggle = function () { setOpen(!open, "api"); };
    self.send = function (text) { if (typeof text === "string" && text) { setOpen(true, "api"); post({ type: "send", text: text }); } };
    self.identify = function (u) { if (u && typeof u === "object") post({ type: "identify", id: String(u.id || ""), name: String(u.name || ""), email: String(u.email || ""), hash: String(u.hash || "") }); };
    self.reset = function () { post({ type: "reset" }); };
    self.destroy = function () {
      lockScroll(false);
      w.removeEventListener("message", onMessage);
      if (w.visualViewport) w.visualViewport.removeEventListener("resize", fit);
      cancelIdle();
      clearTimeout(giveUp);
      if (port) port.close();
      host.remove();
    };
    widgets.push(self);
  }

  function api(cmd, arg, more) {
    if (cmd === "on") { if (typeof more === "function" || typeof arg === "function") (handlers[arg] = handlers[arg] || []).push(more); return; }
    if (cmd === "destroy") {
      widgets.splice(0).forEach(function (x) { x.destroy(); });
      handlers = {};
      if (prev === undefined) { try { delete w.Porthole; } catch (e) { w.Porthole = undefined; } } else w.Porthole = prev;
      return;
    }
    widgets.forEach(function (x) { if (typeof x[cmd] === "function") x[cmd](arg); });
  }
  api.v = V;
  api.add = function (el) { new Widget(el, {}); };
  w.Porthole = api;
  var settings = w.PortholeSettings || {};
  // The script tag's data-* attributes, or window.PortholeSettings.
  var fromTag = !!(me && me.dataset && me.dataset.widgetId);
  if (fromTag || settings.widgetId) new Widget(fromTag ? me : null, fromTag ? {} : settings);
  queue.forEach(function (args) { api.apply(null, args); });
})(window, document);
