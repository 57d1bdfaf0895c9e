// The agent console's few behaviours: live deadline countdowns, editing a suggested script, filling the
// demo accounts on the sign-in page. Text is only ever set with textContent or value, never as HTML.
(function () {
  "use strict";
  // The application's clock may run ahead of real time in demos and tests: count from the server's now.
  var serverNow = Date.parse(document.body.getAttribute("data-server-now") || "");
  var skew = isNaN(serverNow) ? 0 : serverNow - Date.now();

  function span(ms) {
    var minutes = Math.floor(Math.abs(ms) / 60000);
    var days = Math.floor(minutes / 1440), hours = Math.floor((minutes % 1440) / 60), mins = minutes % 60;
    if (days > 0) return days + "天" + hours + "小时";
    if (hours > 0) return hours + "小时" + mins + "分";
    return mins + "分钟";
  }

  function tick() {
    var now = Date.now() + skew;
    document.querySelectorAll("time.countdown").forEach(function (el) {
      var due = Date.parse(el.getAttribute("datetime"));
      if (isNaN(due)) return;
      var left = due - now;
      el.textContent = left > 0 ? "剩 " + span(left) : "已超时 " + span(left);
      el.classList.toggle("late", left <= 0);
      el.classList.toggle("soon", left > 0 && left < 12 * 3600 * 1000);
      var row = el.closest("tr");
      if (row) row.classList.toggle("overdue", left <= 0);
    });
  }
  tick();
  setInterval(tick, 1000);

  // Suggested scripts are read-only until the agent chooses to edit one.
  document.querySelectorAll("textarea[data-editable]").forEach(function (area) { area.readOnly = true; });
  document.querySelectorAll("[data-edit]").forEach(function (button) {
    button.addEventListener("click", function () {
      var area = button.closest("form").querySelector("textarea");
      area.readOnly = !area.readOnly;
      button.textContent = area.readOnly ? "编辑" : "完成编辑";
      if (!area.readOnly) { area.focus(); area.setSelectionRange(area.value.length, area.value.length); }
    });
  });

  // A click on a demo account fills the sign-in form.
  document.querySelectorAll("tr.pick").forEach(function (row) {
    row.addEventListener("click", function () {
      document.getElementById("username").value = row.getAttribute("data-username");
      document.getElementById("password").value = row.getAttribute("data-password");
    });
  });

  // A sent form cannot be sent twice by a double click.
  document.querySelectorAll("form[method=post]").forEach(function (form) {
    form.addEventListener("submit", function () {
      setTimeout(function () {
        form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
      }, 0);
    });
  });

  document.querySelectorAll("[data-back]").forEach(function (button) {
    button.addEventListener("click", function () { history.back(); });
  });

  var log = document.getElementById("conversation");
  if (log) log.scrollTop = log.scrollHeight;
})();
