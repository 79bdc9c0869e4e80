// The rest of Porthole's loader, fetched by widget.js when the browser is
// idle or the visitor reaches for the launcher: the panel's iframe, its
// messages, and the API's commands. It runs on the host page like
// widget.js, with the same care (see there), and is content-named, so a
// browser keeps it for a year. Filled in by the loader crate.
(function (w) {
  var V = +"__VERSION__", P = w.Porthole, d = document;
  // Wires one widget: `s` is what widget.js made of it, `emit` tells the
  // host page's handlers.
  P && P._ && P._(function (s, emit) {
    var id = s.id, o = s.o, base = s.base, side = s.side, button = s.button;
    var mq = w.matchMedia("(max-width:640px)"), vv = w.visualViewport;
    s.css("div{all:initial;position:fixed;bottom:88px;" + side + ":20px;width:380px;height:min(640px,100vh - 110px);border-radius:16px;overflow:hidden;box-shadow:0 12px 40px #0005;background:#fff;display:none;opacity:0;transform:translateY(12px);transition:opacity .2s,transform .2s}" +
      "b{all:initial;position:absolute;top:-2px;right:-2px;min-width:20px;padding:0 5px;box-sizing:border-box;border-radius:10px;background:#dc2626;color:#fff;font:700 12px/20px system-ui,sans-serif;text-align:center}" +
      ".open{display:block}.shown{opacity:1;transform:none}" +
      "iframe{all:initial;display:block;width:100%;height:100%}" +
      "@media (max-width:640px){div{inset:0;width:100%;height:var(--vh,100%);border-radius:0;padding:env(safe-area-inset-top) env(safe-area-inset-right) 0 env(safe-area-inset-left);box-sizing:border-box}.open~button{display:none}}");
    var panel = d.createElement("div");
    var frame, port, open = false, unread = 0, pending = [], saved, giveUp, labels = ["Open chat", "Close chat"];
    s.root.prepend(panel);
    // The icon (the bubble, or a cross while open), and the count of
    // answers that came while it was closed; the labels, open and close,
    // come in the panel's language with its hello.
    function draw() {
      button.innerHTML = (open ? s.icon.replace(/d="[^"]*/, 'd="M6 6l12 12M18 6L6 18') : s.icon) +
        (unread ? "<b>" + (unread > 9 ? "9+" : unread) + "</b>" : "");
      button.setAttribute("aria-label", labels[+open]);
      button.setAttribute("aria-expanded", open);
    }

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
      s.destroy();
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
    s.root.addEventListener("keydown", function (e) { e.key == "Escape" && open && setOpen(false) });
    w.addEventListener("message", onMessage);
    vv && vv.addEventListener("resize", fit);

    s.open = function () { setOpen(true, 1) };
    s.close = function () { setOpen(false, 1) };
    s.toggle = function () { setOpen(!open, 1) };
    s.send = function (text) { if (typeof text == "string" && text) setOpen(true, 1), post({ type: "send", text: text }) };
    s.identify = function (u) { u && post({ type: "identify", id: (u.id || "") + "", name: (u.name || "") + "", email: (u.email || "") + "", hash: (u.hash || "") + "" }) };
    s.reset = function () { post({ type: "reset" }) };
    s.end = function () {
      lockScroll();
      w.removeEventListener("message", onMessage);
      vv && vv.removeEventListener("resize", fit);
      clearTimeout(giveUp);
      port && port.close();
    };
    load();
    if (s.c || s.w) setOpen(true, 1);
  });
})(window);
