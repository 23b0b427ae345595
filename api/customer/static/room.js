/* Pages that change by themselves (progressive enhancement: without this file every page
   works, with its Refresh link). The waiting room listens to the link's event stream and,
   where EventSource is missing or the stream fails, polls /status; the confirmation, whose
   call may be days away, only asks /status once a minute (the room opening, a cancellation).
   When the phase it is told differs from the one the page shows, the page is loaded again:
   the server renders the new phase (the join link, the at-risk notice, the cancelled call). */
(function () {
  "use strict";
  var page = document.querySelector("[data-phase][data-events][data-status]");
  if (!page) {
    return;
  }
  var shown = page.getAttribute("data-phase");
  var eventsUrl = page.getAttribute("data-events");
  var statusUrl = page.getAttribute("data-status");
  var ROOM_POLL_MS = 5000;
  var BOOKED_POLL_MS = 60000;
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
          reload(); /* gone, or too many attempts: the page says so */
          return null;
        }
        return r.json();
      })
      .then(apply)
      .catch(function () {
        /* offline for a moment: the next poll tries again */
      });
  }

  function startPolling(every) {
    if (!timer) {
      timer = window.setInterval(poll, every);
    }
  }

  if (shown === "booked") {
    startPolling(BOOKED_POLL_MS);
  } else if (window.EventSource) {
    source = new window.EventSource(eventsUrl);
    source.addEventListener("phase", function (e) {
      try {
        apply(JSON.parse(e.data));
      } catch (err) {
        startPolling(ROOM_POLL_MS);
      }
    });
    source.onerror = function () {
      if (source.readyState === window.EventSource.CLOSED) {
        startPolling(ROOM_POLL_MS);
      }
    };
  } else {
    startPolling(ROOM_POLL_MS);
  }
})();
