// The simulator's phone page: pick a customer's phone, read what the advisor sent, write back.
(function () {
  "use strict";
  var current = null;
  var rendered = "";

  function $(id) { return document.getElementById(id); }

  function api(method, path, body) {
    var options = { method: method, headers: {} };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(path, options).then(function (response) {
      return response.json().then(function (data) { return { ok: response.ok, data: data }; });
    });
  }

  function phonePath(number) { return "/api/phones/" + encodeURIComponent(number) + "/messages"; }

  function showPhones(phones) {
    var nav = $("phones");
    nav.textContent = "";
    phones.forEach(function (phone) {
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = phone.name ? phone.name + " · " + phone.number : phone.number;
      button.addEventListener("click", function () { select(phone, button); });
      nav.appendChild(button);
      if (current === null) { select(phone, button); }
    });
  }

  function select(phone, button) {
    current = phone;
    rendered = "";
    Array.prototype.forEach.call($("phones").children, function (b) { b.classList.remove("active"); });
    button.classList.add("active");
    $("contact-name").textContent = phone.name || phone.number;
    $("contact-number").textContent = phone.number;
    refresh();
  }

  function statusMark(item) {
    if (item.from_customer) { return ""; }
    return { queued: "🕓", sent: "✓", delivered: "✓✓", read: "✓✓ lu" }[item.status] || "";
  }

  function showConversation(messages) {
    var key = JSON.stringify(messages);
    if (key === rendered) { return; }
    rendered = key;
    var list = $("conversation");
    list.textContent = "";
    messages.forEach(function (item) {
      var li = document.createElement("li");
      li.className = item.from_customer ? "mine" : "theirs";
      var text = document.createElement("p");
      text.textContent = item.body;
      li.appendChild(text);
      if (item.choices) { li.appendChild(choiceButtons(item)); }
      var meta = document.createElement("small");
      meta.textContent = item.channel.toUpperCase() + " " + new Date(item.at).toLocaleTimeString() + " " + statusMark(item);
      li.appendChild(meta);
      list.appendChild(li);
    });
    list.scrollTop = list.scrollHeight;
  }

  // A menu's quick replies or list picker: one button per choice, tapped as on WhatsApp.
  function choiceButtons(item) {
    var box = document.createElement("div");
    box.className = "choices";
    item.choices.forEach(function (choice) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "choice";
      button.textContent = choice.title;
      button.addEventListener("click", function () {
        $("error").textContent = "";
        api("POST", phonePath(current.number), { choice: choice.id, message: item.id }).then(function (result) {
          if (!result.ok || (result.data.app_status && result.data.app_status >= 300)) {
            $("error").textContent = "The app answered " + (result.data.app_status || "nothing") + ".";
          }
          refresh();
        });
      });
      box.appendChild(button);
    });
    return box;
  }

  function refresh() {
    if (current === null) { return; }
    api("GET", phonePath(current.number)).then(function (result) {
      if (result.ok) { showConversation(result.data.messages); }
    }).catch(function () { /* the simulator restarted: the next poll retries */ });
  }

  $("composer").addEventListener("submit", function (event) {
    event.preventDefault();
    var body = $("body").value.trim();
    if (!body || current === null) { return; }
    $("error").textContent = "";
    api("POST", phonePath(current.number), { body: body, channel: $("channel").value }).then(function (result) {
      if (!result.ok || (result.data.app_status && result.data.app_status >= 300)) {
        $("error").textContent = "The app answered " + (result.data.app_status || "nothing") + ".";
      }
      $("body").value = "";
      refresh();
    });
  });

  api("GET", "/api/phones").then(function (result) { showPhones(result.data.phones); });
  window.setInterval(refresh, 1000);
})();
