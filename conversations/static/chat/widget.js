/*
 * Attitré web chat widget: one file, no build step, no third-party request.
 *
 *   <script src="https://attitre.bank.example/static/chat/widget.js"></script>
 *   <script>
 *     AttitreChat.init({tokenProvider: () => fetch("/my-bank/chat-token").then((r) => r.text())});
 *   </script>
 *
 * The widget lives in a Shadow DOM (the host page's styles and scripts do not reach into it),
 * talks to /ws/chat/ on the server that served this file, sends the bank's token as its first
 * frame (never in a URL), shows every text as text, reconnects with backoff and catches up
 * from its cursor, and keeps what was typed offline in localStorage until the server acks it
 * (by client id: a resend never duplicates). docs/webchat.md describes the frames.
 */
(function () {
  "use strict";

  var STRINGS = {
    en: {
      open: "Chat with your advisor",
      close: "Close the chat",
      title: "Your advisor",
      placeholder: "Write your message",
      send: "Send",
      you: "You",
      sending: "Sending…",
      sent: "Sent",
      delivered: "Delivered",
      read: "Read",
      failed: "Not delivered",
      waiting: "Waiting for the network…",
      offline: "Offline: your messages will be sent when the connection returns.",
      typing: "is typing…",
      ended: "The chat is unavailable. Reload the page or try again later.",
      log: "Conversation with your advisor",
      older: "Earlier messages",
      via: { whatsapp: "WhatsApp", sms: "SMS", email: "Email", webchat: "" },
    },
    fr: {
      open: "Discuter avec votre conseiller",
      close: "Fermer la discussion",
      title: "Votre conseiller",
      placeholder: "Écrivez votre message",
      send: "Envoyer",
      you: "Vous",
      sending: "Envoi…",
      sent: "Envoyé",
      delivered: "Distribué",
      read: "Lu",
      failed: "Non distribué",
      waiting: "En attente du réseau…",
      offline: "Hors ligne : vos messages partiront au retour de la connexion.",
      typing: "écrit…",
      ended: "La discussion est indisponible. Rechargez la page ou réessayez plus tard.",
      log: "Conversation avec votre conseiller",
      older: "Messages précédents",
      via: { whatsapp: "WhatsApp", sms: "SMS", email: "E-mail", webchat: "" },
    },
  };

  var CSS =
    ":host{all:initial;font-family:system-ui,sans-serif;font-size:15px;color:#1c2430}" +
    ".launcher{position:fixed;right:20px;bottom:20px;z-index:2147483000;border:0;border-radius:24px;" +
    "padding:12px 18px;background:#0b4f8a;color:#fff;font:inherit;cursor:pointer;box-shadow:0 2px 8px #0004}" +
    ".launcher:focus-visible,button:focus-visible,textarea:focus-visible{outline:3px solid #f5b301;outline-offset:2px}" +
    ".panel{position:fixed;right:20px;bottom:20px;z-index:2147483001;width:min(380px,calc(100vw - 40px));" +
    "height:min(560px,calc(100vh - 40px));display:flex;flex-direction:column;background:#fff;border-radius:12px;" +
    "box-shadow:0 4px 24px #0005;overflow:hidden}" +
    ".panel[hidden]{display:none}" +
    "header{display:flex;align-items:center;gap:8px;padding:12px 14px;background:#0b4f8a;color:#fff}" +
    "header .who{flex:1;min-width:0}header h2{margin:0;font-size:16px}header p{margin:2px 0 0;font-size:13px;opacity:.9}" +
    "header button{border:0;background:transparent;color:#fff;font-size:22px;cursor:pointer;line-height:1}" +
    ".log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:8px;background:#f4f6f9}" +
    ".msg{max-width:80%;padding:8px 10px;border-radius:10px;white-space:pre-wrap;overflow-wrap:anywhere}" +
    ".msg.customer{align-self:flex-end;background:#0b4f8a;color:#fff}" +
    ".msg.advisor{align-self:flex-start;background:#fff;border:1px solid #d5dbe3}" +
    ".meta{display:block;font-size:11px;opacity:.8;margin-top:4px}" +
    ".notice{font-size:13px;color:#5a6472;padding:4px 12px;min-height:1.2em}" +
    "form{display:flex;gap:8px;padding:10px;border-top:1px solid #d5dbe3}" +
    "textarea{flex:1;resize:none;font:inherit;padding:8px;border:1px solid #98a2b3;border-radius:8px;min-height:40px}" +
    "form button{border:0;border-radius:8px;background:#0b4f8a;color:#fff;font:inherit;padding:0 14px;cursor:pointer}" +
    ".older{align-self:center;border:0;background:transparent;color:#0b4f8a;text-decoration:underline;cursor:pointer}";

  var BACKOFF = [1000, 2000, 4000, 8000, 15000, 30000];
  var here = document.currentScript && document.currentScript.src;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      node.setAttribute(name, attrs[name]);
    });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function subjectOf(token) {
    // Only to keep each customer's offline messages apart in this browser: the server checks the token.
    try {
      var part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part)).sub || "";
    } catch (error) {
      return "";
    }
  }

  function newClientId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + "-" + Math.random().toString(36).slice(2);
  }

  function Chat(options) {
    this.options = options;
    this.server = options.server || (here ? new URL(here).origin : window.location.origin);
    this.lang = (options.locale || document.documentElement.lang || "fr").slice(0, 2) === "en" ? "en" : "fr";
    this.cursor = null;
    this.attempt = 0;
    this.subject = "";
    this.rendered = {};
    this.ended = false;
    this.lastAdvisorId = 0;
    this.oldestId = null;
    this.build();
    this.connect();
  }

  Chat.prototype.t = function (key) {
    return STRINGS[this.lang][key];
  };

  Chat.prototype.build = function () {
    // An element of its own: a host page styling every `div` does not hide it.
    var host = el("attitre-chat");
    (this.options.container || document.body).appendChild(host);
    var root = host.attachShadow({ mode: "open" });
    this.host = host;
    this.root = root;
    root.appendChild(el("style", {}, CSS));
    this.launcher = el("button", { class: "launcher", type: "button", "aria-haspopup": "dialog" });
    this.panel = el("section", { class: "panel", role: "dialog", "aria-modal": "true", hidden: "" });
    var header = el("header");
    var who = el("div", { class: "who" });
    this.titleEl = el("h2", { id: "attitre-title" });
    this.statusEl = el("p", { class: "status" });
    who.appendChild(this.titleEl);
    who.appendChild(this.statusEl);
    this.closeButton = el("button", { type: "button", class: "close" }, "×");
    header.appendChild(who);
    header.appendChild(this.closeButton);
    this.log = el("div", { class: "log", role: "log", "aria-live": "polite", tabindex: "0" });
    this.notice = el("p", { class: "notice", role: "status" });
    this.form = el("form");
    this.input = el("textarea", { rows: "2", maxlength: "4000" });
    this.sendButton = el("button", { type: "submit" });
    this.form.appendChild(this.input);
    this.form.appendChild(this.sendButton);
    this.panel.setAttribute("aria-labelledby", "attitre-title");
    [header, this.log, this.notice, this.form].forEach(this.panel.appendChild.bind(this.panel));
    root.appendChild(this.launcher);
    root.appendChild(this.panel);
    this.label();

    var self = this;
    this.launcher.addEventListener("click", function () {
      self.open();
    });
    this.closeButton.addEventListener("click", function () {
      self.close();
    });
    this.form.addEventListener("submit", function (event) {
      event.preventDefault();
      self.submit();
    });
    this.input.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        self.submit();
      }
    });
    this.input.addEventListener("input", function () {
      self.frame({ type: "typing" });
    });
    this.panel.addEventListener("keydown", function (event) {
      if (event.key === "Escape") self.close();
      if (event.key === "Tab") self.trapFocus(event);
    });
    document.addEventListener("visibilitychange", function () {
      self.markRead();
    });
  };

  Chat.prototype.label = function () {
    this.launcher.textContent = this.t("open");
    this.closeButton.setAttribute("aria-label", this.t("close"));
    this.titleEl.textContent = this.advisorName || this.t("title");
    this.input.setAttribute("placeholder", this.t("placeholder"));
    this.input.setAttribute("aria-label", this.t("placeholder"));
    this.sendButton.textContent = this.t("send");
    this.log.setAttribute("aria-label", this.t("log"));
  };

  Chat.prototype.trapFocus = function (event) {
    var focusable = Array.prototype.slice.call(this.panel.querySelectorAll("button, textarea, [tabindex='0']"));
    var first = focusable[0];
    var last = focusable[focusable.length - 1];
    var active = this.root.activeElement;
    if (event.shiftKey && active === first) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && active === last) {
      event.preventDefault();
      first.focus();
    }
  };

  Chat.prototype.open = function () {
    this.panel.hidden = false;
    this.launcher.hidden = true;
    this.input.focus();
    this.markRead();
  };

  Chat.prototype.close = function () {
    this.panel.hidden = true;
    this.launcher.hidden = false;
    this.launcher.focus();
  };

  // --- the offline queue: what was typed and not acked yet, per customer ---
  Chat.prototype.outboxKey = function () {
    return "attitre-chat-outbox:" + this.subject;
  };

  Chat.prototype.outbox = function () {
    try {
      return JSON.parse(localStorage.getItem(this.outboxKey()) || "[]");
    } catch (error) {
      return [];
    }
  };

  Chat.prototype.saveOutbox = function (items) {
    try {
      localStorage.setItem(this.outboxKey(), JSON.stringify(items));
    } catch (error) {
      /* private mode: the queue lives as long as the page */
    }
    this.memoryOutbox = items;
  };

  Chat.prototype.stored = function (key) {
    try {
      return localStorage.getItem(key);
    } catch (error) {
      return null;
    }
  };

  Chat.prototype.submit = function () {
    var body = this.input.value.trim();
    if (!body) return;
    this.input.value = "";
    var item = { client_id: newClientId(), body: body };
    this.saveOutbox(this.outbox().concat([item]));
    this.render({ id: null, from: "customer", body: body, status: "sending", client_id: item.client_id });
    this.frame({ type: "message.send", client_id: item.client_id, body: body });
  };

  Chat.prototype.flush = function () {
    var self = this;
    this.outbox().forEach(function (item) {
      if (!self.rendered["c:" + item.client_id]) {
        self.render({ id: null, from: "customer", body: item.body, status: "sending", client_id: item.client_id });
      }
      self.frame({ type: "message.send", client_id: item.client_id, body: item.body });
    });
  };

  // --- the socket ---
  Chat.prototype.connect = function () {
    var self = this;
    if (this.ended) return;
    Promise.resolve()
      .then(function () {
        return self.options.tokenProvider ? self.options.tokenProvider() : null;
      })
      .then(function (token) {
        var auth = { type: "auth", since: self.cursor };
        if (token === null) {
          // A visitor (CHAT_ALLOW_VISITORS): the signed id the server gave, kept on the bank's origin.
          self.subject = "visitor";
          auth.visitor = self.stored("attitre-chat-visitor");
          auth.locale = self.lang;
        } else {
          auth.token = String(token).trim();
          self.subject = subjectOf(auth.token);
        }
        var url = self.server.replace(/^http/, "ws") + "/ws/chat/";
        var socket = new WebSocket(url);
        self.socket = socket;
        socket.onopen = function () {
          socket.send(JSON.stringify(auth));
        };
        socket.onmessage = function (event) {
          self.receive(JSON.parse(event.data));
        };
        socket.onclose = function (event) {
          self.closed(event.code);
        };
      })
      .catch(function () {
        self.retry(null);
      });
  };

  Chat.prototype.frame = function (frame) {
    if (this.socket && this.socket.readyState === 1 && this.ready) {
      this.socket.send(JSON.stringify(frame));
      return true;
    }
    if (frame.type === "message.send") this.notice.textContent = this.t("offline");
    return false;
  };

  Chat.prototype.closed = function (code) {
    this.ready = false;
    this.socket = null;
    if (code === 4403 || code === 4400 || code === 4413) {
      this.ended = true;
      this.notice.textContent = this.t("ended");
      return;
    }
    this.notice.textContent = this.t("waiting");
    this.retry(code === 4429 ? 60000 : null);
  };

  Chat.prototype.retry = function (delay) {
    var self = this;
    var wait = delay || BACKOFF[Math.min(this.attempt, BACKOFF.length - 1)];
    this.attempt += 1;
    // Jitter: a thousand widgets cut off by one server restart do not come back together.
    setTimeout(function () {
      self.connect();
    }, wait / 2 + Math.random() * (wait / 2));
  };

  Chat.prototype.receive = function (frame) {
    var self = this;
    switch (frame.type) {
      case "visitor":
        try {
          localStorage.setItem("attitre-chat-visitor", frame.id);
        } catch (error) {
          /* private mode: a new visitor at the next page */
        }
        break;
      case "ready":
        this.ready = true;
        this.attempt = 0;
        this.notice.textContent = "";
        this.lang = frame.language === "en" ? "en" : "fr";
        this.advisor(frame.advisor);
        this.label();
        break;
      case "history":
        frame.messages
          .slice()
          .reverse()
          .forEach(function (message) {
            self.render(message, true);
          });
        this.olderButton(frame.complete);
        break;
      case "cursor":
        this.cursor = frame.since;
        this.flush();
        this.markRead();
        break;
      case "message.created":
        this.render(frame.message);
        this.markRead();
        break;
      case "message.ack":
        this.acked(frame.client_id, frame.id);
        break;
      case "message.refused":
        this.saveOutbox(
          this.outbox().filter(function (item) {
            return item.client_id !== frame.client_id;
          })
        );
        this.notice.textContent = frame.message;
        break;
      case "message.status":
        this.status(frame.id, frame.status);
        break;
      case "advisor.status":
        this.advisor(frame);
        break;
      case "typing":
        this.notice.textContent = (this.advisorName || this.t("title")) + " " + this.t("typing");
        clearTimeout(this.typingTimer);
        this.typingTimer = setTimeout(function () {
          self.notice.textContent = "";
        }, 4000);
        break;
      case "resync":
        this.log.textContent = "";
        this.rendered = {};
        break;
      case "error":
        this.notice.textContent = frame.message;
        break;
    }
  };

  Chat.prototype.advisor = function (status) {
    this.advisorName = status.name || "";
    this.titleEl.textContent = this.advisorName || this.t("title");
    this.statusEl.textContent = status.text || "";
  };

  Chat.prototype.acked = function (clientId, id) {
    this.saveOutbox(
      this.outbox().filter(function (item) {
        return item.client_id !== clientId;
      })
    );
    var node = this.rendered["c:" + clientId];
    if (node) {
      node.setAttribute("data-id", String(id));
      this.rendered[id] = node;
      this.meta(node, "customer", "sent");
    }
    if (!this.outbox().length) this.notice.textContent = "";
  };

  Chat.prototype.status = function (id, status) {
    var node = this.rendered[id];
    if (node) this.meta(node, node.getAttribute("data-from"), status);
  };

  Chat.prototype.meta = function (node, from, status, author, channel) {
    if (author !== undefined) node.setAttribute("data-author", author || "");
    if (channel !== undefined) node.setAttribute("data-channel", channel || "");
    var via = this.t("via")[node.getAttribute("data-channel") || ""] || "";
    var parts =
      from === "customer"
        ? [this.t(status === "received" ? "sent" : status), via]
        : [node.getAttribute("data-author"), via];
    node.querySelector(".meta").textContent = parts.filter(Boolean).join(" · ");
  };

  Chat.prototype.render = function (message, prepend) {
    var known = (message.id && this.rendered[message.id]) || (message.client_id && this.rendered["c:" + message.client_id]);
    if (known) {
      if (message.id) {
        known.setAttribute("data-id", String(message.id));
        this.rendered[message.id] = known;
      }
      return;
    }
    var node = el("div", { class: "msg " + message.from, "data-from": message.from });
    // Text only: what a customer or an advisor wrote is never parsed as markup.
    node.appendChild(document.createTextNode(message.body || (message.files || []).join(", ")));
    node.appendChild(el("span", { class: "meta" }));
    this.meta(node, message.from, message.status, message.author, message.channel);
    if (message.id) {
      node.setAttribute("data-id", String(message.id));
      this.rendered[message.id] = node;
      if (this.oldestId === null || message.id < this.oldestId) this.oldestId = message.id;
    }
    if (message.client_id) this.rendered["c:" + message.client_id] = node;
    if (message.from === "advisor" && message.id > this.lastAdvisorId) this.lastAdvisorId = message.id;
    var older = this.log.querySelector(".older");
    if (prepend) {
      this.log.insertBefore(node, older ? older.nextSibling : this.log.firstChild);
    } else {
      this.log.appendChild(node);
      this.log.scrollTop = this.log.scrollHeight;
    }
  };

  Chat.prototype.olderButton = function (complete) {
    var self = this;
    var button = this.log.querySelector(".older");
    if (complete) {
      if (button) button.remove();
      return;
    }
    if (!button) {
      button = el("button", { type: "button", class: "older" }, this.t("older"));
      button.addEventListener("click", function () {
        self.frame({ type: "history", before: self.oldestId });
      });
      this.log.insertBefore(button, this.log.firstChild);
    }
  };

  Chat.prototype.markRead = function () {
    if (this.panel.hidden || document.visibilityState === "hidden" || !this.lastAdvisorId) return;
    if (this.lastAdvisorId === this.readUpTo) return;
    if (this.frame({ type: "message.read", id: this.lastAdvisorId })) this.readUpTo = this.lastAdvisorId;
  };

  window.AttitreChat = {
    init: function (options) {
      if (!options || (typeof options.tokenProvider !== "function" && !options.visitor)) {
        throw new Error("AttitreChat.init needs a tokenProvider function returning the bank's token, or visitor: true.");
      }
      return new Chat(options);
    },
  };
})();
