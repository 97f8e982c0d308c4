// Live pages: when the server says a branch or tag moved, the page's <main> is fetched again
// and replaced in place (no reload, no framework).
(function () {
  var main = document.getElementById("main");
  if (!main || !main.hasAttribute("data-live") || !window.EventSource) return;
  var busy = false, again = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(location.href, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (text) {
        if (text) {
          var doc = new DOMParser().parseFromString(text, "text/html");
          var fresh = doc.getElementById("main");
          if (fresh) { main.innerHTML = fresh.innerHTML; main.setAttribute("data-updated", String(Date.now())); }
        }
      })
      .catch(function () {})
      .then(function () { busy = false; if (again) { again = false; refresh(); } });
  }
  var events = new EventSource("/events");
  events.addEventListener("open", function () { main.setAttribute("data-live-open", "1"); });
  events.addEventListener("commit", refresh);
})();
