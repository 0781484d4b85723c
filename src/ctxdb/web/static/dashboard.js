// The dashboard's only script: shows times in the viewer's zone, and refreshes each page's
// live region without a reload. What triggers a refresh is one function (startTrigger), so
// that a poll can give way to the change feed (GET /v1/events) without touching the rest.
"use strict";

(function () {
  const POLL_MS = 1000;
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

  function refresher(region) {
    let etag = null;
    let running = false;
    return async function refresh() {
      if (running || document.hidden) return;
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
      }
    };
  }

  function startTrigger(refresh) {
    window.setInterval(function () {
      localizeTimes(document);  // ages keep counting between changes
      refresh();
    }, POLL_MS);
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) refresh();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localizeTimes(document);
    const region = document.querySelector("[data-live]");
    if (region && region.dataset.signin) startTrigger(refresher(region));
  });
})();
