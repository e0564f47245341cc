/* 复核台 (review desk): keyboard and in-place decisions on the 待复核 queue.
   Plain script, no library, nothing loaded from elsewhere. Server text is only ever set
   with textContent, never parsed as markup. Without this script every form still works
   (a normal POST, then the page again). */
(function () {
  "use strict";
  var page = document.body.getAttribute("data-page");

  function post(form, kind) {
    var data = new FormData(form);
    data.set("kind", kind);
    return fetch(form.action, {
      method: "POST", body: data, credentials: "same-origin",
      headers: { "Accept": "application/json" }
    }).then(function (r) {
      return r.json().catch(function () { return { ok: false, message: "服务器返回了无法读取的结果 (HTTP " + r.status + ")" }; });
    }, function () { return { ok: false, message: "连不上复核台：它还在运行吗？" }; });
  }

  function setText(id, text) {
    var el = document.getElementById(id);
    if (el && text !== undefined) { el.textContent = text; }
  }

  if (page !== "queue") { return; }

  var items = Array.prototype.slice.call(document.querySelectorAll("section.item"));
  var current = -1;

  function select(i) {
    if (!items.length) { return; }
    i = Math.max(0, Math.min(items.length - 1, i));
    if (current >= 0 && items[current]) { items[current].classList.remove("current"); }
    current = i;
    items[i].classList.add("current");
    items[i].focus({ preventScroll: true });
    items[i].scrollIntoView({ block: "nearest" });
  }

  function nextOpen(from) {
    for (var i = from + 1; i < items.length; i++) { if (!items[i].classList.contains("done")) { return i; } }
    return from;
  }

  function decide(item, kind) {
    var form = item.querySelector("form.decide");
    var out = item.querySelector(".result");
    if (!form || item.classList.contains("done") || item.classList.contains("busy")) { return; }
    var reason = form.querySelector("input.reason");
    if (kind === "waive" && !reason.value.trim()) {
      form.setAttribute("data-pending", "waive");
      out.className = "result bad";
      out.textContent = "免除需要写理由：写好后按 Enter。";
      reason.focus();
      return;
    }
    item.classList.add("busy");
    out.className = "result";
    out.textContent = "正在写入调整文件并重新出账……";
    post(form, kind).then(function (res) {
      item.classList.remove("busy");
      if (!res.ok) {
        out.className = "result bad";
        out.textContent = res.message || "没有写入。";
        return;
      }
      item.classList.add("done");
      form.remove();
      out.className = "result ok";
      out.textContent = "已写入 " + res.where + "：" + res.line;
      setText("total-fines", res.fines);
      setText("to-confirm-amount", res.to_confirm_amount);
      setText("left", String(res.to_confirm));
      var i = items.indexOf(item);
      if (i === current) { select(nextOpen(i)); }
    });
  }

  items.forEach(function (item, i) {
    item.addEventListener("click", function () { if (current !== i) { select(i); } });
    var form = item.querySelector("form.decide");
    if (!form) { return; }
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var kind = (ev.submitter && ev.submitter.value) || form.getAttribute("data-pending") || "waive";
      decide(item, kind);
    });
  });

  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
    var t = ev.target;
    var typing = t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT");
    if (typing) {
      if (ev.key === "Escape") { t.blur(); if (current >= 0) { items[current].focus({ preventScroll: true }); } }
      if (ev.key === "Enter" && t.classList.contains("reason")) {
        /* Enter in a reason field waives (a reason is what a waiver needs); confirm is c or the button */
        ev.preventDefault();
        var owner = t.closest("section.item");
        if (owner) { select(items.indexOf(owner)); decide(owner, "waive"); }
      }
      return;
    }
    if (!items.length) { return; }
    var item = current >= 0 ? items[current] : null;
    switch (ev.key) {
      case "j": select(current + 1); break;
      case "k": select(current - 1); break;
      case "c": if (item) { decide(item, "confirm"); } break;
      case "w": if (item) { decide(item, "waive"); } break;
      case "r": if (item) { var r = item.querySelector("input.reason"); if (r) { r.focus(); } } break;
      case "o": if (item) { var a = item.querySelector("a.open-line"); if (a) { window.location.href = a.href; } } break;
      default: return;
    }
    ev.preventDefault();
  });

  if (items.length) { select(0); }
})();
