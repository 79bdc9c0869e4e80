// Porthole's loader: one <script> tag draws a launcher in a shadow
// root; the rest (the panel's iframe, its messages, the API's commands) is
// src/panel.js, fetched when the browser is idle or the visitor reaches for
// the launcher. It touches nothing else on the host page: one global
// (Porthole), no global handlers overwritten, no styles outside its shadow
// root. Filled in by the loader crate (the values below in double
// underscores); see loader/src/lib.rs.
//
// Every byte here is paid on every page view of every host site, before the
// launcher shows, so the source is written for size (goal: at most 2 KB
// gzip, with panel.js), with comments for the reader; `scripts/size-report`
// prints the figures.
(function (w, d) {
  var ORIGIN = "__ORIGIN__", PANEL = "__PANEL__";
  var me = d.currentScript, prev = w.Porthole, widgets = [], handlers = {}, queue = [], wire, script;
  // A second loader on the page hands its widget to the first.
  if (prev && prev.v) return prev.add(me);

  function emit(name, data) {
    (handlers[name] || []).forEach(function (f) { try { f(data) } catch (e) { setTimeout(function () { throw e }) } });
  }
  // Fetches panel.js once; it calls Porthole._ with what wires a widget.
  function more(base) {
    if (script) return;
    script = d.createElement("script");
    script.src = base + PANEL;
    // A host whose CSP trusts this script by a nonce trusts panel.js too.
    script.nonce = me && me.nonce;
    // Once run (or refused), the element goes: the page keeps no trace.
    script.onload = function () { script.remove() };
    script.onerror = function () {
      script.remove();
      console.warn("Porthole: " + script.src + " did not load; a Content-Security-Policy must allow " + base + " in script-src");
      widgets.slice().forEach(function (x) { x.destroy(); emit("error", { widget: x.id, code: "not_started" }) });
    };
    d.head.append(script);
  }
  // Runs a command on the widgets there were when it was given.
  function run(list, cmd, arg) {
    list.forEach(function (x) { typeof x[cmd] == "function" && x[cmd](arg) });
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
    var host = d.createElement("porthole-widget"), root = host.attachShadow({ mode: "open" });
    var button = d.createElement("button");
    function load() { more(base) }
    // Adds CSS to the shadow root: a constructed sheet, which a host's CSP
    // does not block; a <style> where the browser has none.
    function css(text) {
      try { var sheet = new CSSStyleSheet; sheet.replaceSync(text); root.adoptedStyleSheets = [].concat.apply([sheet], root.adoptedStyleSheets) }
      catch (e) { var s = d.createElement("style"); s.textContent = text; root.prepend(s) }
    }
    // The host hangs off <html>, outside <body>, so the page's body zoom and
    // transforms never reach it; the root's own zoom is undone here.
    css(":host{all:initial!important;zoom:" + 1 / (parseFloat(getComputedStyle(d.documentElement).zoom) || 1) +
      "!important;position:fixed!important;z-index:2147483000!important;bottom:0!important;" + side +
      ":0!important;display:block!important;width:0!important;height:0!important}" +
      "button{all:initial;position:fixed;bottom:max(20px,env(safe-area-inset-bottom));" + side + ":20px;width:56px;height:56px;border-radius:50%;background:" + color +
      ";color:#fff;cursor:pointer;display:grid;place-items:center;box-shadow:0 6px 20px #0004;transition:transform .2s}" +
      "button:hover{transform:scale(1.06)}button:focus-visible{outline:3px solid " + color + ";outline-offset:3px}" +
      "svg{width:26px;height:26px;fill:none;stroke:currentColor;stroke-width:2;stroke-linecap:round;stroke-linejoin:round}" +
      "@media (prefers-reduced-motion:reduce){*{transition:none}}");
    // The bubble; panel.js draws the rest (a cross while open, the count of
    // answers that came while it was closed, the labels in the panel's
    // language).
    button.innerHTML = self.icon = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M21 12a8 8 0 0 1-11.6 7.1L4 21l1.9-5.4A8 8 0 1 1 21 12z"/></svg>';
    button.type = "button";
    button.setAttribute("aria-label", "Open chat");
    button.setAttribute("aria-expanded", false);
    root.append(button);
    // Until panel.js is here, a click is remembered (and fetches it).
    button.onclick = function () { self.c ^= 1; load() };
    button.onpointerenter = button.onfocus = load;
    // Fetch panel.js (and so the panel) when the browser is idle, so the
    // first open is instant.
    var idle = w.requestIdleCallback ? requestIdleCallback(load, { timeout: 3000 }) : setTimeout(load, 1500);
    d.documentElement.append(host);

    // w: the page asked for it open (data-open).
    self.id = id; self.o = o; self.base = base; self.side = side; self.w = o.open == "true" || o.open === true;
    self.root = root; self.button = button; self.css = css;
    self.destroy = function () {
      self.end && self.end();
      (w.cancelIdleCallback || clearTimeout)(idle);
      host.remove();
      var i = widgets.indexOf(self);
      i < 0 || widgets.splice(i, 1);
    };
    widgets.push(self);
    wire ? wire(self, emit) : (self.w || queue.length) && load();
  }

  function api(cmd, arg, f) {
    if (cmd == "on") return typeof f == "function" && (handlers[arg] = handlers[arg] || []).push(f);
    if (cmd == "destroy") {
      run(widgets.slice(), "destroy");
      handlers = {}; queue = [];
      prev === undefined ? delete w.Porthole : w.Porthole = prev;
      return;
    }
    if (wire) return run(widgets, cmd, arg);
    queue.push([widgets.slice(), cmd, arg]);
    widgets[0] && more(widgets[0].base);
  }
  // The stage interface: what `_` hands panel.js and what it expects back.
  // The server gives an older widget.js (cached, or on a CDN) this
  // release's panel.js, so a change to it must bump v and keep the old one.
  api.v = 1;
  api.add = function (el) { el && new Widget(el) };
  // panel.js hands over the function that wires one widget.
  api._ = function (f) {
    if (wire) return;
    wire = f;
    widgets.forEach(function (x) { f(x, emit) });
    queue.splice(0).forEach(function (a) { run(a[0], a[1], a[2]) });
  };
  w.Porthole = api;
  // The script tag's data-* attributes, or window.PortholeSettings.
  var first = me && me.dataset.widgetId ? me : w.PortholeSettings;
  first && new Widget(first);
  ((prev && prev.q) || []).forEach(function (args) { api.apply(null, args) });
})(window, document);
