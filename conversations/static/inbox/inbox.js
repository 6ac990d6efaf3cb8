// The live inbox: one websocket per tab keeps the list and the open thread up to date
// without reloading. Frames are described in channels_app/consumers.py.
//
// Customer text never becomes HTML here: rows, timeline items and thread parts are
// fetched already rendered (and escaped) by the server, then parsed by DOMParser,
// which runs no script; a browser notification is plain text.
//
// Events carry ids and metadata, never what was written: a handler fetches what the event
// touched, as it is now and as this advisor may see it. Every handler is idempotent, because
// a replay after a reconnection may repeat events the page already has.
//
// The cursor is the server's: a position in the event log's commit order (the page renders
// it; a replay ends with a "cursor" frame), never an event id, which commit out of order.

const MIN_DELAY_MS = 1000;
const MAX_DELAY_MS = 30000;
// Two heartbeats (25 s apart) missed: the connection is dead even if the browser has not noticed.
const SILENCE_LIMIT_MS = 60000;
const SEEN_IDS_KEPT = 5000;
const WAITING_REFRESH_MS = 30000;
const CURSOR_KEY = "attitre.inbox.position";
const CLOSE_UNAUTHORIZED = 4401;
const RELOAD_GUARD_MS = 10000;

const ROW_EVENTS = new Set([
  "message.created", "thread.updated", "thread.assigned", "note.created", "customer.reassigned",
  "thread.triaged", "thread.urgent",
]);
const TIMELINE_EVENTS = new Set([
  "message.created", "message.status", "attachment.updated", "note.created",
  "thread.assigned", "consent.changed", "customer.reassigned", "thread.triaged",
]);
const HEADER_EVENTS = new Set([
  "message.created", "thread.updated", "thread.assigned", "customer.reassigned", "thread.triaged",
]);
const CARD_EVENTS = new Set(["consent.changed", "customer.reassigned"]);

const live = {
  socket: null,
  attempt: 0,
  reconnectTimer: null,
  watchdog: null,
  state: "connecting",
  cursor: 0,
  // Until the first replay ends, events may already be in the page as rendered: no notification.
  replayed: false,
  seen: new Set(),
  seenOrder: [],
  me: null,
  unread: new Map(),
  jobs: new Map(),
};

function page() {
  const main = document.getElementById("content");
  return main && main.dataset.live ? main : null;
}

function fill(template, id) {
  // "/inbox/threads/0/row/" or "/inbox/threads/7/events/0/": the last "/0/" is the placeholder.
  const at = template.lastIndexOf("/0/");
  return `${template.slice(0, at)}/${Number(id)}/${template.slice(at + 3)}`;
}

// --- Connection -------------------------------------------------------------------

function connect() {
  clearTimeout(live.reconnectTimer);
  live.reconnectTimer = null;
  const main = page();
  if (!main) return;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const url = `${scheme}//${location.host}${main.dataset.socketPath}?since=${encodeURIComponent(live.cursor)}`;
  let socket;
  try {
    socket = new WebSocket(url);
  } catch {
    scheduleReconnect();
    return;
  }
  live.socket = socket;
  socket.addEventListener("open", () => {
    if (live.socket !== socket) return;
    live.attempt = 0;
    setState("connected");
    armWatchdog(socket);
  });
  socket.addEventListener("message", (message) => {
    if (live.socket !== socket) return;
    armWatchdog(socket);
    receive(message.data);
  });
  socket.addEventListener("close", (event) => {
    if (live.socket !== socket) return;
    if (event.code === CLOSE_UNAUTHORIZED) {
      // The socket's session ended (signed out, expired, password changed) or the advisor
      // may no longer connect. Reloading lets the server say which: the page again when
      // this browser is still signed in (its session renewed), else the login page or the
      // reason. Refused right after a full load, the login page, never a reload loop.
      live.socket = null;
      clearTimeout(live.watchdog);
      if (performance.now() < RELOAD_GUARD_MS) location.assign(page()?.dataset.loginUrl || "/accounts/login/");
      else location.reload();
      return;
    }
    drop(socket);
  });
  socket.addEventListener("error", () => drop(socket));
}

// Give up on a socket and schedule the next one; the catch-up on reconnection fills the gap.
function drop(socket) {
  if (live.socket !== socket) return;
  live.socket = null;
  clearTimeout(live.watchdog);
  // A dead connection may take minutes to report its close: don't wait for it.
  socket.close();
  setState("reconnecting");
  scheduleReconnect();
}

function scheduleReconnect() {
  clearTimeout(live.reconnectTimer);
  // Exponential backoff, 1 s doubling up to 30 s, with jitter so that a server restart
  // is not met by every tab at the same instant.
  const base = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * 2 ** live.attempt);
  live.attempt += 1;
  const delay = Math.max(MIN_DELAY_MS, base * (0.75 + Math.random() * 0.25));
  live.reconnectTimer = setTimeout(connect, delay);
}

function reconnectNow() {
  if (live.socket && live.socket.readyState <= WebSocket.OPEN) return;
  live.attempt = 0;
  connect();
}

function armWatchdog(socket) {
  clearTimeout(live.watchdog);
  live.watchdog = setTimeout(() => drop(socket), SILENCE_LIMIT_MS);
}

function setState(state) {
  live.state = state;
  renderState();
}

function renderState() {
  const status = document.getElementById("live-status");
  if (!status) return;
  const key = `text${live.state.charAt(0).toUpperCase()}${live.state.slice(1)}`;
  const text = status.dataset[key] || live.state;
  // Only a change is written, so that screen readers announce changes, not heartbeats.
  if (status.dataset.state !== live.state || status.textContent !== text) {
    status.dataset.state = live.state;
    status.textContent = text;
  }
}

// --- Events -----------------------------------------------------------------------

function receive(text) {
  let frame;
  try {
    frame = JSON.parse(text);
  } catch {
    return;
  }
  if (!frame || typeof frame !== "object") return;
  setState("connected");
  if (frame.type === "resync") {
    location.reload();
    return;
  }
  if (frame.type === "cursor") {
    advance(Number(frame.since));
    return;
  }
  if (frame.type === "customer.presence" || frame.type === "customer.typing") {
    chatPresence(frame);
    return;
  }
  const id = Number(frame.id);
  // Heartbeats, pongs and presence carry no event id: nothing more to do with them here.
  if (!Number.isInteger(id) || id <= 0) return;
  if (live.seen.has(id)) return;
  remember(id);
  apply(frame, id);
}

// The customer's web chat, on their thread's page: on the bank's site or not, typing.
function chatPresence(frame) {
  const element = document.getElementById("chat-presence");
  if (!element || element.dataset.thread !== String(frame.thread)) return;
  if (frame.type === "customer.presence") {
    element.dataset.online = frame.online ? "true" : "false";
    element.textContent = frame.online ? element.dataset.onlineText : element.dataset.offlineText;
    return;
  }
  element.textContent = element.dataset.typingText;
  clearTimeout(live.typingTimer);
  live.typingTimer = setTimeout(() => {
    element.textContent =
      element.dataset.online === "false" ? element.dataset.offlineText : element.dataset.onlineText;
  }, 4000);
}

function remember(id) {
  live.seen.add(id);
  live.seenOrder.push(id);
  if (live.seenOrder.length > SEEN_IDS_KEPT) live.seen.delete(live.seenOrder.shift());
}

// The replay has brought the page every event below `position`.
function advance(position) {
  live.replayed = true;
  if (!Number.isInteger(position) || position <= live.cursor) return;
  live.cursor = position;
  try {
    sessionStorage.setItem(CURSOR_KEY, String(position));
  } catch {
    // Storage disabled: the cursor in memory is enough for this tab.
  }
}

function apply(frame, id) {
  const summary = frame.thread_summary;
  if (summary && typeof summary === "object") trackUnread(summary);
  const main = page();
  if (main && main.dataset.live === "inbox" && ROW_EVENTS.has(frame.type)) {
    once(`row:${frame.thread}`, () => refreshRow(frame.thread, frame.type === "message.created"));
  }
  if (main && main.dataset.live === "thread" && String(frame.thread) === main.dataset.threadId) {
    if (TIMELINE_EVENTS.has(frame.type)) refreshItem(main, id);
    if (HEADER_EVENTS.has(frame.type)) once("part:header", () => refreshPart("thread-header", "headerUrl"));
    if (CARD_EVENTS.has(frame.type)) once("part:card", () => refreshPart("customer-card", "cardUrl"));
  }
  if (frame.type === "message.created") notify(frame);
  if (frame.type === "thread.urgent") alertUrgent(frame);
}

// An urgent topic chosen from the triage menu: whoever is on duty sees it at once, on any page.
function alertUrgent(frame) {
  const main = page();
  if (!live.replayed || !main) return;
  let box = document.getElementById("urgent-alerts");
  if (!box) {
    box = document.createElement("div");
    box.id = "urgent-alerts";
    box.setAttribute("role", "alert");
    main.prepend(box);
  }
  const link = document.createElement("a");
  link.className = "urgent-alert";
  link.href = fill(main.dataset.threadUrl, frame.thread);
  link.textContent = main.dataset.urgentText || "Urgent";
  box.appendChild(link);
  if ("Notification" in window && Notification.permission === "granted") {
    new Notification(main.dataset.urgentText || "Urgent", { tag: `urgent-${Number(frame.thread)}` });
  }
}

// One fetch at a time per key; events arriving meanwhile cause one more fetch after it.
async function once(key, job) {
  if (live.jobs.has(key)) {
    live.jobs.set(key, true);
    return;
  }
  live.jobs.set(key, false);
  try {
    do {
      live.jobs.set(key, false);
      await job();
    } while (live.jobs.get(key));
  } catch (error) {
    console.warn("Live update failed; the next event or a reload will catch up.", error);
  } finally {
    live.jobs.delete(key);
  }
}

async function fetchFragment(url) {
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
  if (response.status === 204 || response.status === 404) return null;
  if (!response.ok || response.redirected) throw new Error(`GET ${url}: ${response.status}`);
  const parsed = new DOMParser().parseFromString(await response.text(), "text/html");
  const element = parsed.body.firstElementChild;
  return element ? document.adoptNode(element) : null;
}

function activate(element) {
  // Links and forms inside new content get htmx's boosting, like the rest of the page.
  if (window.htmx) window.htmx.process(element);
  renderWaiting(element);
}

// --- The list ---------------------------------------------------------------------

async function refreshRow(threadId, fresh) {
  const main = page();
  if (!main || main.dataset.live !== "inbox") return;
  const query = new URLSearchParams({ tab: main.dataset.tab || "", q: main.dataset.q || "" });
  const row = await fetchFragment(`${fill(main.dataset.rowUrl, threadId)}?${query}`);
  const list = document.getElementById("thread-list");
  // The page may have changed while fetching (a boosted navigation): only update the same list.
  if (!list || page() !== main) return;
  const existing = document.getElementById(`thread-row-${Number(threadId)}`);
  const hadFocus = existing && existing.contains(document.activeElement);
  if (existing) existing.remove();
  if (row) {
    insertRow(list, row);
    activate(row);
    if (fresh) {
      row.classList.add("is-fresh");
      setTimeout(() => row.classList.remove("is-fresh"), 3000);
    }
    if (hadFocus) row.querySelector("a")?.focus();
  }
  const empty = document.getElementById("thread-list-empty");
  if (empty) empty.hidden = list.children.length > 0;
}

function insertRow(list, row) {
  // The server's order: most recent activity first, then the highest id.
  const activity = Number(row.dataset.activity);
  const id = Number(row.dataset.threadId);
  for (const other of list.children) {
    const otherActivity = Number(other.dataset.activity);
    if (otherActivity < activity || (otherActivity === activity && Number(other.dataset.threadId) < id)) {
      list.insertBefore(row, other);
      return;
    }
  }
  list.append(row);
}

// The list shows its first page; the next ones are fetched as the advisor scrolls near
// the end (or follows the "Older conversations" link, which works without script too).
let moreObserver = null;

function watchMore() {
  if (moreObserver) moreObserver.disconnect();
  const link = document.querySelector("#thread-list-more [data-more-rows]");
  if (!link || !("IntersectionObserver" in window)) return;
  moreObserver = new IntersectionObserver((entries) => {
    if (entries.some((entry) => entry.isIntersecting)) once("more", loadMore);
  }, { rootMargin: "400px" });
  moreObserver.observe(link);
}

async function loadMore() {
  const main = page();
  const more = document.getElementById("thread-list-more");
  const link = more?.querySelector("[data-more-rows]");
  if (!main || !link) return;
  const url = new URL(link.href, window.location.href);
  url.searchParams.set("part", "rows");
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
  if (!response.ok || response.redirected) throw new Error(`GET ${url}: ${response.status}`);
  const parsed = new DOMParser().parseFromString(await response.text(), "text/html");
  const list = document.getElementById("thread-list");
  if (!list || page() !== main) return;
  for (const row of Array.from(parsed.querySelectorAll("li.thread-row"))) {
    // A row the live list already placed (it moved meanwhile) stays where it is.
    if (document.getElementById(row.id)) continue;
    const adopted = document.adoptNode(row);
    list.append(adopted);
    activate(adopted);
  }
  const next = parsed.getElementById("thread-list-more");
  if (next) more.replaceWith(document.adoptNode(next));
  else more.remove();
  watchMore();
}

document.addEventListener("click", (event) => {
  const link = event.target.closest?.("#thread-list-more [data-more-rows]");
  if (!link || !page()) return;
  event.preventDefault();
  once("more", loadMore);
});

// --- The open thread --------------------------------------------------------------

// The timeline shows its most recent messages; earlier ones are fetched as the advisor
// scrolls up (or follows the "Earlier messages" link, which works without script too).
let earlierObserver = null;

function watchEarlier() {
  if (earlierObserver) earlierObserver.disconnect();
  const timeline = document.getElementById("timeline");
  const link = document.querySelector("#timeline-earlier [data-earlier-items]");
  if (!timeline || !link || !("IntersectionObserver" in window)) return;
  earlierObserver = new IntersectionObserver((entries) => {
    if (entries.some((entry) => entry.isIntersecting)) once("earlier", loadEarlier);
  }, { root: timeline, rootMargin: "300px" });
  earlierObserver.observe(link);
}

async function loadEarlier() {
  const main = page();
  const timeline = document.getElementById("timeline");
  const earlier = document.getElementById("timeline-earlier");
  const link = earlier?.querySelector("[data-earlier-items]");
  if (!main || !timeline || !link) return;
  const url = new URL(link.href, window.location.href);
  url.searchParams.set("part", "timeline");
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
  if (!response.ok || response.redirected) throw new Error(`GET ${url}: ${response.status}`);
  const parsed = new DOMParser().parseFromString(await response.text(), "text/html");
  if (page() !== main) return;
  // What the advisor is reading stays in place while earlier items go in above it.
  const fromBottom = timeline.scrollHeight - timeline.scrollTop;
  const items = Array.from(parsed.querySelectorAll("ol > li")).filter(
    // The live timeline may already hold an item (a status change of an old message).
    (item) => item.id === "timeline-earlier" || !document.getElementById(item.id),
  );
  earlier.replaceWith(...items.map((item) => document.adoptNode(item)));
  for (const item of items) activate(item);
  timeline.scrollTop = timeline.scrollHeight - fromBottom;
  watchEarlier();
}

document.addEventListener("click", (event) => {
  const link = event.target.closest?.("#timeline-earlier [data-earlier-items]");
  if (!link || !page()) return;
  event.preventDefault();
  once("earlier", loadEarlier);
});

async function refreshItem(main, eventId) {
  const item = await fetchFragment(fill(main.dataset.eventUrl, eventId));
  const timeline = document.getElementById("timeline");
  if (!item || !timeline || page() !== main) return;
  const existing = document.getElementById(item.id);
  if (existing) {
    existing.replaceWith(item);
  } else {
    const atBottom = timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < 80;
    timeline.append(item);
    if (atBottom) timeline.scrollTop = timeline.scrollHeight;
  }
  activate(item);
  const empty = document.getElementById("timeline-empty");
  if (empty) empty.hidden = true;
}

async function refreshPart(elementId, urlKey) {
  const main = page();
  const current = document.getElementById(elementId);
  if (!main || !current || !main.dataset[urlKey]) return;
  // Never pull a form from under the advisor's fingers: wait until focus leaves the part.
  if (current.contains(document.activeElement)) {
    if (!current.dataset.stale) {
      current.dataset.stale = "1";
      current.addEventListener("focusout", function later(event) {
        if (current.contains(event.relatedTarget)) return;
        current.removeEventListener("focusout", later);
        once(`part:${elementId}`, () => refreshPart(elementId, urlKey));
      });
    }
    return;
  }
  const part = await fetchFragment(main.dataset[urlKey]);
  const now = document.getElementById(elementId);
  if (!part || !now || page() !== main || now.contains(document.activeElement)) return;
  for (const details of now.querySelectorAll("details[open][id]")) {
    part.querySelector(`#${CSS.escape(details.id)}`)?.setAttribute("open", "");
  }
  now.replaceWith(part);
  activate(part);
}

// Opening a thread (a GET) writes nothing: once the page is on screen it tells the server,
// which reads the thread if this advisor handles it. Once per page shown.
function reportShown() {
  const main = page();
  if (!main || !main.dataset.readUrl || main.dataset.shownReported) return;
  if (document.visibilityState !== "visible") return; // a background tab: when it comes to the front
  main.dataset.shownReported = "1";
  fetch(main.dataset.readUrl, {
    method: "POST",
    credentials: "same-origin",
    headers: { "X-CSRFToken": main.dataset.csrfToken || "" },
    body: new URLSearchParams({ shown: "1" }),
  }).catch((error) => console.warn("The thread was not marked read; its button still can.", error));
}

// --- Unread count in the title ----------------------------------------------------

function seedUnread(main) {
  live.me = Number(main.dataset.me);
  live.unread = new Map();
  for (const pair of (main.dataset.unread || "").split(",")) {
    const [threadId, count] = pair.split(":").map(Number);
    if (threadId && count) live.unread.set(threadId, count);
  }
  renderTitle();
}

function trackUnread(summary) {
  const threadId = Number(summary.id);
  const count = Number(summary.unread_count) || 0;
  if (summary.handler === live.me && summary.status !== "closed" && count > 0) {
    live.unread.set(threadId, count);
  } else {
    live.unread.delete(threadId);
  }
  renderTitle();
}

function renderTitle() {
  let total = 0;
  for (const count of live.unread.values()) total += count;
  const base = document.title.replace(/^\(\d+\)\s*/, "");
  document.title = total > 0 ? `(${total}) ${base}` : base;
}

// --- Notifications ----------------------------------------------------------------

function notify(frame) {
  if (!live.replayed || !("Notification" in window) || Notification.permission !== "granted") return;
  const message = frame.message;
  const summary = frame.thread_summary;
  if (!message || message.direction !== "inbound" || !summary) return;
  // Mine, or waiting in the pool for whoever takes it; not every thread a supervisor oversees.
  if (summary.handler !== live.me && summary.handler !== null) return;
  const main = page();
  const viewing = main && main.dataset.live === "thread" && main.dataset.threadId === String(frame.thread);
  if (viewing && document.visibilityState === "visible") return;
  if (!main?.dataset.noticeUrl) return;
  // The event carries no text: ask for it, as this advisor may see it.
  fetch(fill(main.dataset.noticeUrl, message.id), { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then((response) => (response.ok && !response.redirected ? response.json() : null))
    .then((notice) => {
      if (!notice) return;
      const notification = new Notification(String(notice.title || ""), {
        body: String(notice.body || ""),
        tag: `thread-${Number(frame.thread)}`,
      });
      const template = main.dataset.threadUrl;
      notification.addEventListener("click", () => {
        window.focus();
        if (template) location.assign(fill(template, frame.thread));
        notification.close();
      });
    })
    .catch((error) => console.warn("No notification for this message.", error));
}

function renderNotifyButton() {
  const button = document.getElementById("notify-button");
  if (button) button.hidden = !("Notification" in window) || Notification.permission !== "default";
}

// --- "Waiting for N minutes" --------------------------------------------------------

function renderWaiting(root = document) {
  const lang = document.documentElement.lang || undefined;
  const unit = (value, name) =>
    new Intl.NumberFormat(lang, { style: "unit", unit: name, unitDisplay: "long" }).format(value);
  const now = Date.now() / 1000;
  for (const time of root.querySelectorAll("time[data-waiting-since]")) {
    const minutes = Math.max(0, Math.floor((now - Number(time.dataset.waitingSince)) / 60));
    const days = Math.floor(minutes / 1440);
    const hours = Math.floor((minutes % 1440) / 60);
    let text;
    if (days > 0) text = hours ? `${unit(days, "day")}, ${unit(hours, "hour")}` : unit(days, "day");
    else if (hours > 0) text = minutes % 60 ? `${unit(hours, "hour")}, ${unit(minutes % 60, "minute")}` : unit(hours, "hour");
    else text = unit(minutes, "minute");
    if (time.textContent !== text) time.textContent = text;
  }
}

// --- The reply composer -------------------------------------------------------------

// "12 / 1600 characters" under the reply; the words come translated in data-text.
function renderCounters(root = document) {
  for (const counter of root.querySelectorAll("[data-count-for]")) {
    const field = document.getElementById(counter.dataset.countFor);
    if (!field) continue;
    const max = field.maxLength > 0 ? field.maxLength : 0;
    const text = (counter.dataset.text || "{count} / {max}")
      .replace("{count}", String(field.value.length))
      .replace("{max}", String(max));
    if (counter.textContent !== text) counter.textContent = text;
    counter.classList.toggle("is-near-limit", max > 0 && field.value.length >= max * 0.9);
  }
}

// A template's preview follows its variables as the advisor edits them (text only, never HTML).
function renderPreview(input) {
  const form = input.closest(".template-form");
  const number = input.dataset.variable;
  if (!form || !number) return;
  for (const mark of form.querySelectorAll("[data-template-preview] mark[data-variable]")) {
    if (mark.dataset.variable === number) mark.textContent = input.value.trim() || `{{${number}}}`;
  }
}

function composerInput(event) {
  const target = event.target;
  if (!(target instanceof HTMLElement)) return;
  if (target.id && document.querySelector(`[data-count-for="${CSS.escape(target.id)}"]`)) renderCounters();
  if (target.matches(".template-form input[data-variable]")) renderPreview(target);
  if (target.id === "reply-body") typing();
}

// The customer's open web chat shows that the advisor is typing (the server throttles it too).
function typing() {
  const main = page();
  const now = Date.now();
  if (!main || main.dataset.live !== "thread" || !live.socket || live.socket.readyState !== WebSocket.OPEN) return;
  if (now - (live.typingSent || 0) < 3000) return;
  live.typingSent = now;
  live.socket.send(JSON.stringify({ type: "typing", thread: Number(main.dataset.threadId) }));
}

// --- Page life --------------------------------------------------------------------

function pageShown() {
  const main = page();
  if (!main) return;
  seedUnread(main);
  renderState();
  renderNotifyButton();
  renderWaiting();
  renderCounters();
  watchMore();
  const timeline = document.getElementById("timeline");
  if (timeline) timeline.scrollTop = timeline.scrollHeight;
  watchEarlier();
  reportShown();
  if (!live.socket && !live.reconnectTimer) connect();
}

function start() {
  const main = page();
  if (!main) return;
  let stored = 0;
  try {
    stored = Number(sessionStorage.getItem(CURSOR_KEY)) || 0;
  } catch {
    stored = 0;
  }
  // The page shows the state as of its own cursor: replay from there (the stored one only
  // when the page has none).
  live.cursor = Number(main.dataset.since) || stored;
  pageShown();

  document.addEventListener("click", (event) => {
    if (!event.target.closest("#notify-button") || !("Notification" in window)) return;
    Notification.requestPermission().then(renderNotifyButton);
  });
  // A boosted navigation swaps the body: the socket stays, the page's state is read again.
  document.addEventListener("htmx:afterSettle", (event) => {
    if (event.target === document.body) pageShown();
  });
  document.addEventListener("input", composerInput);
  window.addEventListener("online", reconnectNow);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState !== "visible") return;
    reconnectNow();
    reportShown();
  });
  setInterval(renderWaiting, WAITING_REFRESH_MS);
}

start();
