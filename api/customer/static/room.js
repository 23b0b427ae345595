/* Pages that change by themselves (progressive enhancement: without this file every page
   works, with its Refresh link). The waiting room listens to the link's event stream and,
   where EventSource is missing or the stream fails, polls /status; the confirmation, whose
   call may be days away, only asks /status once a minute (the room opening, a cancellation).
   Admission is shown in place, without a reload: the heading changes, the join link (and the
   specialist's name, where the tenant shows it) appears and takes the focus, and a screen
   reader hears it from the status region. Any other change of phase loads the page again: the
   server renders the new phase (the at-risk notice with its picker, the cancelled call). */
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

  function safeUrl(url) {
    return typeof url === "string" && /^https?:\/\//i.test(url);
  }

  function admit(data) {
    var waiting = document.getElementById("waiting");
    if (shown !== "waiting" || !waiting) {
      reload();
      return;
    }
    if (source) {
      source.close();
    }
    if (timer) {
      window.clearInterval(timer);
    }
    var heading = page.querySelector("h1");
    if (heading) {
      heading.textContent = "You can join your call now";
    }
    document.title = "Join your support call";
    var line = document.createElement("p");
    var focus = line;
    if (safeUrl(data.join_url)) {
      line.className = "join";
      var link = document.createElement("a");
      link.id = "join";
      link.href = data.join_url;
      link.rel = "noopener noreferrer";
      link.textContent = "Join the call";
      line.appendChild(link);
      focus = link;
    } else {
      line.id = "call-you";
      line.textContent = "Your specialist will call you now.";
      line.tabIndex = -1;
    }
    line.setAttribute("role", "status");
    waiting.parentNode.replaceChild(line, waiting);
    if (typeof data.agent_name === "string" && data.agent_name) {
      var who = document.createElement("p");
      who.appendChild(document.createTextNode("Your specialist: "));
      var name = document.createElement("strong");
      name.id = "agent-name";
      name.textContent = data.agent_name;
      who.appendChild(name);
      line.parentNode.insertBefore(who, line.nextSibling);
    }
    var refresh = document.getElementById("refresh");
    if (refresh && refresh.parentNode) {
      refresh.parentNode.parentNode.removeChild(refresh.parentNode);
    }
    shown = "admitted";
    page.setAttribute("data-phase", shown);
    focus.focus();
  }

  function apply(data) {
    if (!data || !data.phase || data.phase === shown) {
      return;
    }
    if (data.phase === "admitted") {
      admit(data);
    } else {
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
