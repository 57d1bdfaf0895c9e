// The buyer's after-sales requests with their timeline and a live countdown to the next deadline.
// Refreshed every few seconds, so timer outcomes and agents' steps show up while the page is open.
(function () {
  const box = document.getElementById("requests");
  const STATUS = {
    requested: "商家审核中", rejected: "商家已拒绝", awaiting_return: "待您寄回", return_shipped: "待商家收货",
    refund_refused: "商家拒绝退款", escalated: "平台介入中", checking: "退款审核中", awaiting_supervisor: "退款审核中",
    awaiting_finance: "财务核对中", awaiting_cashier: "等待打款", exchange_shipping: "换货发出中",
    refunded: "退款成功", exchanged: "换货完成", closed: "已关闭", cancelled: "已撤销",
  };
  const WHO = { buyer: "您", reviewer: "客服", supervisor: "客服主管", finance: "财务", cashier: "出纳",
                arbitrator: "平台", system: "系统" };
  const ACTION = {
    submit: "提交申请", approve_return: "同意退货", approve_refund: "同意退款", reject: "拒绝", escalate: "申请平台介入",
    modify: "修改申请", expire: "超时关闭", ship_back: "寄回商品", confirm_receipt: "确认收货",
    confirm_receipt_exchange: "确认收货", refuse_refund: "拒绝退款", arbitrate_for_buyer: "判定支持买家",
    arbitrate_for_seller: "判定支持商家", check_online: "初审通过", pay_original_route: "原路退款",
    check_offline: "初审通过", confirm_money_received: "确认收款", close_nothing_collected: "无需退款，关闭",
    record_transfer: "已转账", ship_replacement: "寄出换货", cancel: "撤销申请", seller_shipped: "商家已发货，退款关闭",
    express_refund: "极速退款",
  };
  const yuan = (fen) => "¥" + (fen / 100).toFixed(2);

  function countdown(iso) {
    const ms = new Date(iso) - Date.now();
    if (ms <= 0) return "即将处理";
    const h = Math.floor(ms / 3600000), m = Math.floor((ms % 3600000) / 60000);
    return (h >= 24 ? Math.floor(h / 24) + "天" + (h % 24) + "小时" : h + "小时" + m + "分") + "后到期";
  }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  async function render() {
    const response = await fetch("/api/me/after-sales");
    if (!response.ok) return;
    const requests = await response.json();
    if (!requests.length) return;
    box.replaceChildren();
    for (const r of requests.slice(0, 5)) {
      const card = el("article", "card request");
      const head = el("header");
      head.append(el("span", null, "售后单 " + r.id + " · " + r.items.map((i) => i.name + "×" + i.quantity).join("、")));
      head.append(el("span", "state", STATUS[r.status] || r.status));
      card.append(head);
      const facts = el("div", "muted", "退款 " + yuan(r.refund_fen) + (r.note ? " · 原因：" + r.note : ""));
      card.append(facts);
      if (r.deadline_at) {
        const due = el("div", "deadline");
        due.dataset.deadline = r.deadline_at;
        due.textContent = countdown(r.deadline_at);
        card.append(due);
      }
      const steps = await (await fetch("/api/me/after-sales/" + r.id + "/timeline")).json();
      const list = el("ol", "timeline");
      for (const s of steps) {
        const when = new Date(s.at).toLocaleString("zh-CN", { hour12: false });
        list.append(el("li", null, when + " " + (WHO[s.role] || s.role) + " " + (ACTION[s.action] || s.action)
          + (s.reason ? "（" + s.reason + "）" : "")));
      }
      card.append(list);
      box.append(card);
    }
  }

  setInterval(function () {
    document.querySelectorAll("[data-deadline]").forEach(function (n) { n.textContent = countdown(n.dataset.deadline); });
  }, 1000);
  render();
  setInterval(render, 8000);
})();
