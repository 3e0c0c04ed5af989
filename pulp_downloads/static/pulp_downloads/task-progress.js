// The task page follows its task without a reload. While the task waits or runs (or was
// canceled and its worker is still writing the summary), the page asks for the task's
// progress (JSON) every second and puts it in place: the bar and its line, then every
// element marked data-live="<name>" gets the answer's parts[name] (state badges, Started,
// Finished, Duration, Error, Summary, Failures), rendered by the server. Once the task is
// no longer active its Cancel button goes; once it is settled the polling stops and the
// panel says so with data-polling="0".
(function () {
  "use strict";
  var panel = document.getElementById("sync-progress");
  if (!panel || panel.dataset.polling !== "1") { return; }

  function text(id, value) {
    var node = document.getElementById(id);
    if (node) { node.textContent = value; }
  }
  function optional(id, value) {
    text(id, value);
    var separator = document.getElementById(id + "-sep");
    if (separator) { separator.hidden = !value; }
  }
  function show(progress) {
    var bar = document.getElementById("sync-bar");
    bar.value = progress.percent;
    bar.textContent = progress.percent + " %";
    text("sync-percent", progress.percent + " %");
    text("sync-state", progress.outcome);
    text("sync-files", progress.files);
    optional("sync-bytes", progress.bytes);
    optional("sync-rate", progress.rate);
    optional("sync-eta", progress.eta);
    Object.keys(progress.parts).forEach(function (name) {
      document.querySelectorAll('[data-live="' + name + '"]').forEach(function (node) {
        node.innerHTML = progress.parts[name];  // rendered and escaped by the server
      });
    });
    if (!progress.active) {
      var cancel = document.getElementById("cancel-sync");
      if (cancel) { cancel.closest("li").remove(); }
    }
    panel.dataset.partial = progress.partial ? "1" : "0";
    panel.dataset.state = progress.state;
  }
  function poll() {
    fetch(panel.dataset.url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) {
        if (!response.ok) { throw new Error(response.status); }
        return response.json();
      })
      .then(function (progress) {
        show(progress);
        if (progress.live) {
          window.setTimeout(poll, 1000);
        } else {
          panel.dataset.polling = "0";
        }
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 1000);
})();
