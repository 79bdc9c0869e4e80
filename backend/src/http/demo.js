// The demo page's own script (a file, so the page needs no inline script):
// the documented queue stub, then a button that uses the host API.
window.Porthole = window.Porthole || function () { (window.Porthole.q = window.Porthole.q || []).push(arguments); };
document.getElementById("ask").addEventListener("click", function () {
  window.Porthole("send", "Which models are supported?");
});
