/* yuncang service worker: the app shell (versioned scripts) from the cache, pages from the network
   with the last good copy as the fallback, so a grower offline still sees the last data.
   No Background Sync (Safari/iOS and WeChat's browser lack it): the page itself flushes its outbox. */
var VERSION = "__VERSION__";
var SHELL = __SHELL__;
var SHELL_CACHE = "yc-shell-" + VERSION, PAGE_CACHE = "yc-pages-v1";

self.addEventListener("install", function (ev) {
  ev.waitUntil(caches.open(SHELL_CACHE).then(function (c) { return c.addAll(SHELL); }).then(function () {
    return self.skipWaiting();
  }));
});

self.addEventListener("activate", function (ev) {
  ev.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (k) { return k.indexOf("yc-shell-") === 0 && k !== SHELL_CACHE; })
      .map(function (k) { return caches.delete(k); }));
  }).then(function () { return self.clients.claim(); }));
});

self.addEventListener("fetch", function (ev) {
  var req = ev.request, url = new URL(req.url);
  if (req.method !== "GET" || url.origin !== location.origin) return;
  if (url.pathname.indexOf("/static/") === 0 && url.search.indexOf("v=") >= 0) {
    ev.respondWith(caches.match(req).then(function (hit) {
      return hit || fetch(req).then(function (res) {
        var copy = res.clone();
        caches.open(SHELL_CACHE).then(function (c) { c.put(req, copy); });
        return res;
      });
    }));
    return;
  }
  if (req.mode === "navigate" && /^\/(grower|buyer|manager)(\/|$)/.test(url.pathname)) {
    ev.respondWith(fetch(req).then(function (res) {
      if (res.ok && !res.redirected) {
        var copy = res.clone();
        caches.open(PAGE_CACHE).then(function (c) { c.put(url.pathname + url.search, copy); });
      }
      return res;
    }).catch(function () {
      return caches.open(PAGE_CACHE).then(function (c) {
        return c.match(url.pathname + url.search).then(function (hit) { return hit || c.match(url.pathname); });
      }).then(function (hit) {
        return hit || new Response("<meta charset=utf-8><p>离线:暂无缓存的页面。Offline: no saved copy yet.</p>",
                                   {headers: {"Content-Type": "text/html; charset=utf-8"}});
      });
    }));
  }
});
