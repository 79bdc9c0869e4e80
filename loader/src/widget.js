// Porthole's loader: one <script> tag draws a launcher in a shadow
// root and opens the chat in an iframe. It touches nothing else on the host
// page: one global (Porthole), no global handlers overwritten, no styles
// outside its shadow root. Filled in by the loader crate (the values below
// in double underscores); see loader/src/lib.rs.
//
// Every byte here is paid on every page view of every host site, so the
// source is written for size (goal: at most 2 KB gzip), with comments for
// the reader; `scripts/size-report` prints the figure.
(function (w, d) {
  var ORIGIN = "__ORIGIN__", V = +"__VERSION__";
  var me = d.currentScript, prev = w.Porthole, widgets = [], handlers = {};
  // A second loader on the page hands its widget to the first.
  if (prev && prev.v) return prev.add(me);

  function emit(name, data) {
    (handlers[name] || []).forEach(function (f) { try { f(data) } catch (e) { setTimeout(function () { throw e }) } });
  }

  // One widget, from its script tag's data-* attributes or from
  // window.PortholeSettings: both name them widgetId, key, position, color
  // and open.
  function Widget(o) {
    var el = o.tagName && o, id = (o = el ? o.dataset : o).widgetId || "";
    if (!/^[\w-]{1,64}$/.test(id)) return console.warn("Porthole: data-widget-id is missing or invalid");
    var self = this, side = o.position == "left" ? "left" : "right", color = o.color;
    if (!/^#[\da-f]{6}$/i.test(color)) color = "#4f46e5";
    var base = ORIGIN || new URL(el ? el.src : "", location.href).origin;
    var mq = w.matchMedia("(max-width:640px)"), vv = w.visualViewport;
    var host = d.createElement("porthole-widget"), root = host.attachShadow({ mode: "open" });
    // The host hangs off <html>, outside <body>, so the page's body zoom and
    // transforms never reach it; the root's own zoom is undone here.
    var css = ":host{all:initial!important;zoom:" + 1 / (parseFloat(getComputedStyle(d.documentElement).zoom) || 1) +
      "!important;position:fixed!important;z-index:2147483000!important;bottom:0!important;" + side +
      ":0!important;display:block!important;width:0!important;height:0!important}" +
      "button{all:initial;position:fixed;bottom:max(20px,env(safe-area-inset-bottom));" + side + ":20px;width:56px;height:56px;border-radius:50%;background:" + color +
      ";color:#fff;cursor:pointer;display:grid;place-items:center;box-shadow:0 6px 20px #0004;transition:transform .2s}" +
      "button:hover{transform:scale(1.06)}button:focus-visible{outline:3px solid " + color + ";outline-offset:3px}" +
      "svg{width:26px;height:26px;fill:none;stroke:currentColor;stroke-width:2;stroke-linecap:round;stroke-linejoin:round}" +
      "b{all:initial;position:absolute;top:-2px;right:-2px;min-width:20px;padding:0 5px;box-sizing:border-box;border-radius:10px;background:#dc2626;color:#fff;font:700 12px/20px system-ui,sans-serif;text-align:center}" +
      "div{all:initial;position:fixed;bottom:88px;" + side + ":20px;width:380px;height:min(640px,100vh - 110px);border-radius:16px;overflow:hidden;box-shadow:0 12px 40px #0005;background:#fff;display:none;opacity:0;transform:translateY(12px);transition:opacity .2s,transform .2s}" +
      ".open{display:block}.shown{opacity:1;transform:none}" +
      "iframe{all:initial;display:block;width:100%;height:100%}" +
      "@media (max-width:640px){div{inset:0;width:100%;height:var(--vh,100%);border-radius:0;padding:env(safe-area-inset-top) env(safe-area-inset-right) 0 env(safe-area-inset-left);box-sizing:border-box}.open~button{display:none}}" +
      "@media (prefers-reduced-motion:reduce){*{transition:none}}";
    // A constructed sheet, which a host's CSP does not block; a <style>
    // where the browser has none.
    try { var sheet = new CSSStyleSheet; sheet.replaceSync(css); root.adoptedStyleSheets = [sheet] }
    catch (e) { root.innerHTML = "<style>" + css + "</style>" }
    var panel = d.createElement("div"), button = d.createElement("button");
    var svg = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="';
    var frame, port, open = false, unread = 0, pending = [], saved, giveUp;
    // The launcher's labels, open and close; the panel's hello brings them
    // in its language.
    var labels = ["Open chat", "Close chat"];
    // The icon, and the count of answers that came while it was closed.
    function draw() {
      button.innerHTML = svg + (open ? "M6 6l12 12M18 6L6 18" : "M21 12a8 8 0 0 1-11.6 7.1L4 21l1.9-5.4A8 8 0 1 1 21 12z") + '"/></svg>' +
        (unread ? "<b>" + (unread > 9 ? "9+" : unread) + "</b>" : "");
      button.setAttribute("aria-label", labels[+open]);
      button.setAttribute("aria-expanded", open);
    }
    button.type = "button"; draw();
    root.append(panel, button);

    function load() {
      if (frame) return;
      frame = d.createElement("iframe");
      frame.title = "Chat";
      frame.allow = "clipboard-write";
      // The visitor's languages, so the panel speaks the first it can.
      frame.src = base + "/widget/" + id + "?key=" + encodeURIComponent(o.key || "") + "&lang=" + encodeURIComponent(navigator.languages.slice(0, 5));
      // A frame the browser refused (a site not in the widget's allowed
      // sites, a wrong id or key, the server down) still fires load, but
      // never says hello: then take the launcher away rather than leave the
      // visitor an empty panel. The wasm is preloaded, so a live panel says
      // hello well within the grace after load.
      frame.onload = function () { port || giveUp || (giveUp = setTimeout(fail, 8000)) };
      panel.append(frame);
    }
    function fail() {
      console.warn("Porthole: widget " + id + " did not start; check its id, key and allowed sites (" + location.origin + ")");
      self.destroy();
      widgets.splice(widgets.indexOf(self), 1);
      emit("error", { widget: id, code: "not_started" });
    }
    // Until the iframe has said hello, messages wait in order.
    function post(m) {
      m.v = V;
      port ? port.postMessage(m) : pending.push(m);
    }
    function fit() {
      panel.style.setProperty("--vh", (vv ? vv.height : w.innerHeight) + "px");
    }
    // On phones the panel covers the page: keep the page from scrolling
    // behind it, and put back exactly what was there.
    function lockScroll(on) {
      var el = d.documentElement;
      if (on) {
        if (mq.matches && saved === undefined) saved = el.getAttribute("style"), el.style.overflow = "hidden";
        return;
      }
      if (saved !== undefined) saved === null ? el.removeAttribute("style") : el.setAttribute("style", saved), saved = undefined;
    }
    function setOpen(v, api) {
      if (v == open) return;
      open = v; load();
      panel.className = v ? "open" : "";
      if (v) {
        fit(); unread = 0;
        requestAnimationFrame(function () { requestAnimationFrame(function () { panel.className = "open shown" }) });
      }
      draw();
      lockScroll(v);
      post({ type: v ? "open" : "close" });
      if (!v && !api) button.focus();
      emit(v ? "open" : "close", { widget: id });
    }
    function onMessage(e) {
      // Only our iframe's window, at our exact origin, and only the hello.
      var m = e.data;
      if (!frame || e.source != frame.contentWindow || e.origin != base || !m || m.type != "ready" || m.v !== V || port) return;
      clearTimeout(giveUp);
      if (m.open && m.close) labels = [m.open + "", m.close + ""], draw(), frame.title = m.title || "Chat";
      var ch = new MessageChannel;
      port = ch.port1;
      port.onmessage = onPort;
      frame.contentWindow.postMessage({ type: "connect", v: V }, base, [ch.port2]);
      pending.splice(0).forEach(post);
      emit("ready", { widget: id });
    }
    function onPort(e) {
      var m = e.data || {}, t = m.type;
      if (m.v !== V) return;
      if (t == "close") return setOpen(false);
      if (typeof m.text != "string" || (t != "message" && t != "answer")) return;
      if (t == "answer" && !open) unread++, draw();
      emit(t, { widget: id, text: m.text });
    }
    button.onclick = function () { setOpen(!open) };
    button.onpointerenter = button.onfocus = load;
    root.addEventListener("keydown", function (e) { e.key == "Escape" && open && setOpen(false) });
    w.addEventListener("message", onMessage);
    vv && vv.addEventListener("resize", fit);
    // Load the iframe when the browser is idle, so the first open is instant.
    var idle = w.requestIdleCallback ? requestIdleCallback(load, { timeout: 3000 }) : setTimeout(load, 1500);
    d.documentElement.append(host);

    self.id = id;
    self.open = function () { setOpen(true, 1) };
    self.close = function () { setOpen(false, 1) };
    self.toggle = function () { setOpen(!open, 1) };
    self.send = function (text) { if (typeof text == "string" && text) setOpen(true, 1), post({ type: "send", text: text }) };
    self.identify = function (u) { u && post({ type: "identify", id: (u.id || "") + "", name: (u.name || "") + "", email: (u.email || "") + "", hash: (u.hash || "") + "" }) };
    self.reset = function () { post({ type: "reset" }) };
    self.destroy = function () {
      lockScroll();
      w.removeEventListener("message", onMessage);
      vv && vv.removeEventListener("resize", fit);
      (w.cancelIdleCallback || clearTimeout)(idle);
      clearTimeout(giveUp);
      port && port.close();
      host.remove();
    };
    if (o.open == "true" || o.open === true) setOpen(true, 1);
    widgets.push(self);
  }

  function api(cmd, arg, more) {
    if (cmd == "on") return typeof more == "function" && (handlers[arg] = handlers[arg] || []).push(more);
    if (cmd == "destroy") {
      widgets.splice(0).forEach(function (x) { x.destroy() });
      handlers = {};
      prev === undefined ? delete w.Porthole : w.Porthole = prev;
      return;
    }
    widgets.forEach(function (x) { typeof x[cmd] == "function" && x[cmd](arg) });
  }
  api.v = V;
  api.add = function (el) { el && new Widget(el) };
  w.Porthole = api;
  // The script tag's data-* attributes, or window.PortholeSettings.
  var first = me && me.dataset.widgetId ? me : w.PortholeSettings;
  first && new Widget(first);
  ((prev && prev.q) || []).forEach(function (args) { api.apply(null, args) });
})(window, document);
