// The officer console: deadlines counting down, the queue and the conversation kept
// current by polling, replies sent without reloading. Text from customers and officers
// is only ever put into the page as text (textContent), never as HTML.
(function () {
  "use strict";
  var csrf = document.querySelector('meta[name="csrf-token"]').content;

  function countdown() {
    var now = Date.now();
    document.querySelectorAll("[data-deadline]").forEach(function (el) {
      var left = Math.round((Date.parse(el.dataset.deadline) - now) / 1000);
      var abs = Math.abs(left), h = Math.floor(abs / 3600), m = Math.floor(abs % 3600 / 60), s = abs % 60;
      var span = (h ? h + "小时" : "") + (h || m ? m + "分" : "") + (h ? "" : s + "秒");
      el.textContent = left >= 0 ? "剩 " + span : "已超时 " + span;
      el.classList.toggle("overdue", left < 0);
    });
  }
  countdown();
  setInterval(countdown, 1000);

  // Behaviour the CSP allows no inline handler for: print buttons, selects that submit their form.
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
  });
  document.querySelectorAll("[data-submit-on-change]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });

  // Canned replies: the chosen text goes into the reply box at the cursor (replacing what is
  // selected), where the officer can still change it before sending.
  document.querySelectorAll("[data-insert-into]").forEach(function (picker) {
    picker.addEventListener("change", function () {
      var box = document.getElementById(picker.dataset.insertInto), text = picker.value;
      if (!text) { return; }
      var start = box.selectionStart, end = box.selectionEnd;
      box.value = box.value.slice(0, start) + text + box.value.slice(end);
      box.focus();
      box.selectionStart = box.selectionEnd = start + text.length;
      picker.value = "";
    });
  });

  // -- entering an application: the chosen product's terms, its guarantor field -------
  var product = document.getElementById("entry-product");
  if (product) {
    var fitProduct = function () {
      var chosen = product.selectedOptions[0], term = document.getElementById("entry-term");
      var terms = chosen && chosen.dataset.terms ? chosen.dataset.terms.split(",") : null;
      Array.prototype.forEach.call(term.options, function (o) {
        o.hidden = Boolean(o.value && terms && terms.indexOf(o.value) < 0);
      });
      if (term.selectedOptions[0] && term.selectedOptions[0].hidden) { term.value = ""; }
      document.getElementById("entry-guarantor").hidden = Boolean(chosen && chosen.dataset.guarantor === "0");
    };
    product.addEventListener("change", fitProduct);
    fitProduct();
  }

  function getJSON(url) {
    return fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}}).then(function (r) {
      if (r.status === 401) { location.reload(); }
      return r.json();
    });
  }

  // -- an annual inspection batch: its progress bar and counts while it runs -------------
  var batch = document.getElementById("batch-progress");
  if (batch && batch.dataset.status === "running") {
    var labels = {running: "进行中", done: "已完成", failed: "中断"};
    var pollBatch = function () {
      getJSON(batch.dataset.url).then(function (b) {
        var bar = batch.querySelector("progress");
        bar.max = Math.max(b.total, 1);
        bar.value = b.done;
        b.status_label = labels[b.status] || b.status;
        Object.keys(b).forEach(function (key) {
          var el = batch.querySelector('[data-count="' + key + '"]');
          if (el) { el.textContent = b[key]; }
        });
        if (b.status === "running") { setTimeout(pollBatch, 1000); }
      }).catch(function () { setTimeout(pollBatch, 3000); });
    };
    pollBatch();
  }

  // -- the queue and the home page: reload their tables when anything changed ----------
  var queue = document.querySelector("[data-rows-url]");
  if (queue) {
    var version = null;
    var pollQueue = function () {
      getJSON(queue.dataset.changesUrl).then(function (body) {
        if (version !== null && body.version !== version) {
          return fetch(queue.dataset.rowsUrl, {credentials: "same-origin"}).then(function (r) { return r.text(); })
            .then(function (html) { queue.innerHTML = html; countdown(); version = body.version; });
        }
        version = body.version;
      }).catch(function () {}).then(function () { setTimeout(pollQueue, 1000); });
    };
    pollQueue();
  }

  // -- one conversation: new messages and delivery states ------------------------------
  var list = document.getElementById("messages");
  function render(messages) {
    var atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.textContent = "";
    messages.forEach(function (m) {
      var li = document.createElement("li"), meta = document.createElement("span");
      li.className = m.direction;
      li.dataset.id = m.id;
      meta.className = "meta";
      meta.textContent = m.author + " " + m.at + " " + m.status_label;
      li.appendChild(meta);
      li.appendChild(document.createTextNode(m.body));
      if (m.status === "undelivered") {
        var hint = document.createElement("span"), form = document.createElement("form");
        var token = document.createElement("input"), button = document.createElement("button");
        hint.className = "meta error";
        hint.textContent = m.hint;
        form.method = "post";
        form.action = "/console/messages/" + m.id + "/resend";
        token.type = "hidden"; token.name = "csrf"; token.value = csrf;
        button.type = "submit";
        button.textContent = m.resend;
        form.appendChild(token); form.appendChild(button);
        li.appendChild(hint); li.appendChild(form);
      }
      list.appendChild(li);
    });
    if (atBottom) { list.scrollTop = list.scrollHeight; }
  }
  var last = null;
  function show(body) {
    var seen = JSON.stringify(body);
    if (seen === last) { return; }
    if (last !== null) { render(body.messages); }
    last = seen;
    document.getElementById("hand-off-status").textContent = body.status_label + " · " + (body.officer || "支行队列");
  }
  if (list) {
    list.scrollTop = list.scrollHeight;
    var pollMessages = function () {
      getJSON(list.dataset.url).then(show).catch(function () {})
        .then(function () { setTimeout(pollMessages, 1500); });
    };
    pollMessages();
  }

  var reply = document.getElementById("reply");
  if (reply) {
    reply.addEventListener("submit", function (event) {
      event.preventDefault();
      var error = document.getElementById("reply-error");
      error.textContent = "";
      fetch(reply.dataset.api, {method: "POST", credentials: "same-origin", body: new FormData(reply),
                                headers: {"X-CSRF-Token": csrf, "Accept": "application/json"}})
        .then(function (r) { return r.json().then(function (body) { return {ok: r.ok, body: body}; }); })
        .then(function (res) {
          if (!res.ok) { error.textContent = res.body.message; return; }
          reply.elements.text.value = "";
          return getJSON(list.dataset.url).then(show);
        })
        .catch(function () { error.textContent = "网络不通，回复没有发出，请再试一次"; });
    });
  }
})();
