// The dashboard's only script: shows times in the viewer's zone, and refreshes each page's
// live region without a reload when the change feed (GET /ui/events, server-sent events)
// says something changed; while the feed is not open, it polls every second instead.
"use strict";

(function () {
  const POLL_MS = 1000;      // the poll, while the feed is not open
  const TICK_MS = 10000;     // with the feed open: for what changes with time alone
  const SETTLE_MS = 100;     // a burst of changes: one refresh after it
  const MIN_GAP_MS = 500;    // and never two refreshes closer than this (a busy fleet)
  const REOPEN_MS = 30000;   // a feed the server refused is tried again after this
  const formatter = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
  });

  // "42 s ago" in the largest whole unit, as the server would say it.
  function ago(moment) {
    const seconds = Math.max(0, Math.floor((Date.now() - moment.getTime()) / 1000));
    const units = [["d", 86400], ["h", 3600], ["min", 60]];
    for (const [unit, size] of units) {
      if (seconds >= size) return Math.floor(seconds / size) + " " + unit + " ago";
    }
    return seconds + " s ago";
  }

  // Times arrive as UTC text (so that a region's text, and its ETag, only change when the
  // data does); here they are shown in the viewer's zone, or as an age that keeps counting.
  function localizeTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      const moment = new Date(el.getAttribute("datetime"));
      if (isNaN(moment.getTime())) return;
      el.title = formatter.format(moment);
      el.textContent = el.hasAttribute("data-age") ? ago(moment) : el.title;
    });
  }

  // The person is typing or choosing inside the region: replacing it now would lose that.
  function busy(region) {
    const active = document.activeElement;
    if (!active || !region.contains(active)) return false;
    return ["INPUT", "TEXTAREA", "SELECT"].indexOf(active.tagName) >= 0;
  }

  // Set once the page is being left (a form sent: sign-out, a decision): no refresh and no
  // feed after that, whose answer, a 401 once signed out, would only be noise.
  let leaving = false;
  const feeds = [];
  document.addEventListener("submit", function () {
    leaving = true;
    feeds.forEach(function (feed) { feed.close(); });
  }, true);

  function refresher(region) {
    let etag = region.dataset.etag || null;  // the tag of the region as the page showed it
    let running = false;
    let again = false;  // asked while running: a change may have come after the fetch began
    return async function refresh() {
      if (document.hidden || leaving) return;
      if (running) {
        again = true;
        return;
      }
      running = true;
      try {
        const headers = { "X-Ctxdb-Region": "1" };
        if (etag) headers["If-None-Match"] = etag;
        const answer = await fetch(window.location.href, { headers: headers, cache: "no-store" });
        if (answer.status === 401) {
          window.location.assign(region.dataset.signin);
          return;
        }
        const fresh = answer.headers.get("ETag");
        if (answer.status === 304 && fresh) etag = fresh;  // the data moved, the text did not
        if (answer.status !== 200) return;
        const html = await answer.text();
        if (busy(region)) return;  // keep the old tag: the change is applied on a later try
        etag = fresh;
        region.innerHTML = html;
        localizeTimes(region);
      } catch (error) {
        // The server is restarting or the network is down: the next tick tries again.
      } finally {
        running = false;
        if (again) {
          again = false;
          refresh();
        }
      }
    };
  }

  // The change feed: ``changed`` on every event, ``opened(true|false)`` as it opens and
  // drops. A dropped connection is retried by EventSource itself (with the last event id,
  // so nothing is missed); one the server refused (401, 403, 404) is closed, and opened
  // anew later: meanwhile the poll goes on, and a 401 there leads to the sign-in page.
  function follow(url, changed, opened) {
    if (!window.EventSource || !url || leaving) return;
    const feed = new EventSource(url);
    feeds.push(feed);
    feed.addEventListener("open", function () { opened(true); });
    feed.addEventListener("message", changed);
    feed.addEventListener("error", function () {
      opened(false);
      if (feed.readyState === EventSource.CLOSED) {
        window.setTimeout(function () { follow(url, changed, opened); }, REOPEN_MS);
      }
    });
  }

  function startTrigger(region, refresh) {
    let following = false;
    let last = 0;         // when the last refresh was asked for
    let pending = null;   // the refresh a change scheduled
    function refreshNow() {
      last = Date.now();
      refresh();
    }
    function soon() {
      if (pending !== null) return;
      const wait = Math.max(SETTLE_MS, last + MIN_GAP_MS - Date.now());
      pending = window.setTimeout(function () {
        pending = null;
        refreshNow();
      }, wait);
    }
    follow(region.dataset.events, soon, function (open) {
      following = open;
      region.dataset.following = open ? "feed" : "poll";
      if (open) soon();  // what changed while it was not open
    });
    window.setInterval(function () {
      localizeTimes(document);  // ages keep counting between changes
      if (!following || Date.now() - last >= TICK_MS) refreshNow();
    }, POLL_MS);
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) refreshNow();
    });
    // A refresh held back while the person typed in the region is applied when they leave.
    region.addEventListener("focusout", soon);
  }

  document.addEventListener("DOMContentLoaded", function () {
    localizeTimes(document);
    const region = document.querySelector("[data-live]");
    if (region && region.dataset.signin) startTrigger(region, refresher(region));
  });
})();
