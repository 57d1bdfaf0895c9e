// The shop-window chat: our own small widget on Rasa's socket.io channel. We chose it over
// rasa-webchat because it needs order/item pickers, photo upload and request timelines that talk to
// our API, which rasa-webchat cannot do without a fork. Text is always inserted as text, never HTML.
(function () {
  const log = document.getElementById("chat-log");
  const form = document.getElementById("chat-form");
  const input = document.getElementById("chat-input");
  const status = document.getElementById("chat-status");
  let config = null;
  let socket = null;

  function bubble(from, text, buttons) {
    const row = document.createElement("div");
    row.className = "msg " + from;
    const body = document.createElement("div");
    body.className = "bubble";
    body.textContent = text || "";
    row.appendChild(body);
    if (buttons && buttons.length) {
      const bar = document.createElement("div");
      bar.className = "buttons";
      buttons.forEach(function (b) {
        const btn = document.createElement("button");
        btn.type = "button";
        btn.textContent = b.title;
        btn.addEventListener("click", function () { send(b.payload, b.title); });
        bar.appendChild(btn);
      });
      row.appendChild(bar);
    }
    log.appendChild(row);
    log.scrollTop = log.scrollHeight;
  }

  function send(message, shown) {
    if (!socket || !message) return;
    bubble("buyer", shown || message);
    socket.emit("user_uttered", {
      message: message, session_id: config.session_id,
      customData: { buyer_token: config.buyer_token },
    });
  }

  const photo = document.getElementById("chat-photo");
  photo.addEventListener("change", async function () {
    const file = photo.files[0];
    photo.value = "";
    if (!file) return;
    if (file.size > 5 * 1024 * 1024) { bubble("bot", "照片太大了，请压缩到 5MB 以内再上传"); return; }
    const body = new FormData();
    body.append("file", file);
    const response = await fetch("/api/me/evidence", { method: "POST", body: body });
    const result = await response.json();
    if (!response.ok) { bubble("bot", (result.error && result.error.message) || "照片上传失败，请重试"); return; }
    send(result.payload, "[照片] " + file.name);
  });

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    const text = input.value.trim();
    if (text) { send(text); input.value = ""; }
  });

  async function start() {
    config = await (await fetch("/api/me/chat")).json();
    const history = await (await fetch("/api/me/chat/history")).json();
    history.forEach(function (m) { bubble(m.from, m.text, m.from === "bot" ? m.buttons : []); });
    socket = io(config.rasa_url, { path: "/socket.io/", transports: ["websocket", "polling"] });
    socket.on("connect", function () {
      socket.emit("session_request", { session_id: config.session_id });
    });
    socket.on("session_confirm", function () { status.textContent = "在线"; });
    socket.on("disconnect", function () { status.textContent = "已断开，正在重连…"; });
    socket.on("bot_uttered", function (m) {
      const buttons = (m.quick_replies || m.buttons || []).map(function (b) {
        return { title: b.title, payload: b.payload };
      });
      bubble("bot", m.text, buttons);
    });
  }
  start().catch(function () { status.textContent = "暂时连不上助手，请稍后刷新"; });
})();
