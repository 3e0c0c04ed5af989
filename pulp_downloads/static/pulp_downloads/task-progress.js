// The sync task page: while the task waits or runs, poll its progress (JSON) every second
// and move the bar; when it ends, reload once so the summary and failures show.
(function () {
  "use strict";
  var panel = document.getElementById("sync-progress");
  if (!panel || panel.dataset.active !== "1") { return; }

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
    text("sync-state", progress.state_label);
    text("sync-files", progress.files);
    text("sync-bytes", progress.bytes);
    optional("sync-rate", progress.rate);
    optional("sync-eta", progress.eta);
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
        if (progress.active) {
          window.setTimeout(poll, 1000);
        } else {
          panel.dataset.active = "0";
          window.location.reload();
        }
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 1000);
})();
