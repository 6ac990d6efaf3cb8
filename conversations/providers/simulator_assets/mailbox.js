// The customer's mailbox: emails the bank sent (over SMTP) and those the customer wrote.
(function () {
  const list = document.getElementById("emails");
  const form = document.getElementById("compose");
  const replyTo = document.getElementById("in-reply-to");
  const subject = document.getElementById("subject");
  const body = document.getElementById("email-body");
  const error = document.getElementById("error");
  let shown = -1;

  function render(data) {
    document.getElementById("mailbox-name").textContent = data.name;
    document.getElementById("mailbox-address").textContent = data.address;
    if (data.messages.length === shown) return;
    shown = data.messages.length;
    list.replaceChildren();
    for (const message of data.messages) {
      const item = document.createElement("li");
      item.className = "message " + (message.direction === "sent" ? "outbound" : "inbound");
      const title = document.createElement("strong");
      title.textContent = message.subject + (message.direction === "received" ? " — " + message.from : "");
      const text = document.createElement("p");
      text.textContent = message.body;
      item.append(title, text);
      if (message.attachments.length) {
        const files = document.createElement("p");
        files.textContent = "📎 " + message.attachments.join(", ");
        item.append(files);
      }
      if (message.direction === "received") {
        const answer = document.createElement("button");
        answer.type = "button";
        answer.textContent = "Reply";
        answer.addEventListener("click", () => {
          replyTo.value = message.message_id;
          subject.value = /^re:/i.test(message.subject) ? message.subject : "Re: " + message.subject;
          body.focus();
        });
        item.append(answer);
      }
      list.append(item);
    }
  }

  async function refresh() {
    const response = await fetch("/api/mailbox");
    if (response.ok) render(await response.json());
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const response = await fetch("/api/mailbox", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ subject: subject.value, body: body.value, in_reply_to: replyTo.value }),
    });
    const answer = await response.json();
    if (!response.ok || answer.status !== 200) {
      error.textContent = "The app answered " + (answer.status || response.status) + ".";
    } else {
      body.value = "";
    }
    refresh();
  });
  document.getElementById("new-email").addEventListener("click", () => {
    replyTo.value = "";
    subject.value = "";
  });
  refresh();
  setInterval(refresh, 1000);
})();
