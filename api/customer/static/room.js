/* The waiting room updates itself (progressive enhancement: without this file the page
   works, with its Refresh link). It listens to the link's event stream and, where
   EventSource is missing or the stream fails, polls /status. When the phase it is told
   differs from the one the page shows, the page is loaded again: the server renders the
   new phase (the join link, the at-risk notice, the cancelled call). */
(function () {
  "use strict";
  var page = document.querySelector("[data-phase][data-events][data-status]");
  if (!page) {
    return;
  }
  var shown = page.getAttribute("data-phase");
  var eventsUrl = page.getAttribute("data-events");
  var statusUrl = page.getAttribute("data-status");
  var POLL_MS = 5000;
  var reloading = false;
  var source = null;
  var timer = null;

  function reload() {
    if (reloading) {
      return;
    }
    reloading = true;
    if (source) {
      source.close();
    }
    if (timer) {
      window.clearInterval(timer);
    }
    window.location.reload();
  }

  function apply(data) {
    if (data && data.phase && data.phase !== shown) {
      reload();
    }
  }

  function poll() {
    if (!window.fetch) {
      return;
    }
    window
      .fetch(statusUrl, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (!r.ok) {
          reload(); /* gone or unknown: the page says so */
          return null;
        }
        return r.json();
      })
      .then(apply)
      .catch(function () {
        /* offline for a moment: the next poll tries again */
      });
  }

  function startPolling() {
    if (!timer) {
      timer = window.setInterval(poll, POLL_MS);
    }
  }

  if (window.EventSource) {
    source = new window.EventSource(eventsUrl);
    source.addEventListener("phase", function (e) {
      try {
        apply(JSON.parse(e.data));
      } catch (err) {
        startPolling();
      }
    });
    source.onerror = function () {
      if (source.readyState === window.EventSource.CLOSED) {
        startPolling();
      }
    };
  } else {
    startPolling();
  }
})();
