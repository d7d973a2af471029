// Appends a build's log lines as the server streams them. Lines arrive as
// HTML the server has already escaped and coloured, one server-sent event
// each; EventSource reconnects by itself and resumes after the last id.
(function () {
  "use strict";
  var log = document.getElementById("log");
  if (!log || !log.dataset.events || !window.EventSource) {
    return;
  }
  var state = document.getElementById("log-state");
  var lastStep = null;
  var lines = 0;
  var es = new EventSource(log.dataset.events);

  function nearBottom() {
    return log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  }

  es.addEventListener("line", function (ev) {
    var l = JSON.parse(ev.data);
    var follow = nearBottom();
    if (l.step && l.step !== lastStep) {
      var h = document.createElement("span");
      h.className = "step";
      h.textContent = "▸ " + l.step;
      log.appendChild(h);
      lastStep = l.step;
    }
    var div = document.createElement("span");
    div.className = "ln";
    div.dataset.seq = l.seq;
    div.innerHTML = l.html;
    log.appendChild(div);
    lines++;
    if (state) {
      state.textContent = "live · " + lines + " lines";
    }
    if (follow) {
      log.scrollTop = log.scrollHeight;
    }
  });

  es.addEventListener("end", function (ev) {
    es.close();
    if (!state) {
      return;
    }
    if (log.dataset.live === "true") {
      // The steps and artifacts above were rendered while it ran.
      state.textContent = "build ended (" + JSON.parse(ev.data) + ") · " + lines + " lines · reload for the final steps and artifacts";
    } else {
      state.textContent = lines + " lines";
    }
  });
})();
