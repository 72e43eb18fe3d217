// The style and the script of the HTML report (report/html), inlined into every page. The script
// reads the page's embedded JSON (#report-data) and builds the DOM from it with textContent only (no
// markup from the data), deriving nothing the model does not say. It is kept as a string of plain
// ES2017 so that it runs the same in any current browser, with no build step and no module loader.

export const PAGE_STYLE = `
:root { --fg: #1d232a; --dim: #6b7480; --line: #d8dde3; --bg: #fff; --mark: #fff3b0;
  --nmi: #f0a35e; --mc: #d9534f; --bp: #9b6bd3; --irq: #4a90d9;
  --old: #e6e8eb; --new: #b9e8c0; --int3: #ffd27a; --written: #c9dcf5; --stale: #f5c6cb; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
main { padding: 16px 24px 80px; }
h1 { font-size: 20px; margin: 0 0 6px; }
h2 { font-size: 17px; margin: 28px 0 4px; padding-top: 12px; border-top: 2px solid var(--line); }
h3 { font-size: 15px; margin: 18px 0 4px; }
code, .mono, table.timeline td, table.bytegrid td { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12.5px; }
.summary p, p.settings, p.keys, p.tape { margin: 2px 0; color: var(--dim); }
.verdict { margin: 10px 0; padding: 8px 12px; border-left: 4px solid var(--mc); background: #fbeceb; }
.verdict.holds { border-color: #3c9a50; background: #eaf6ec; }
.verdict a.violation { display: block; color: #a0201c; font-weight: 600; text-decoration: none; cursor: pointer; }
.verdict a.violation:hover { text-decoration: underline; }
.token { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; margin: 6px 0; }
.token code { background: #f3f4f6; padding: 3px 6px; border-radius: 3px; word-break: break-all; }
.token button { font: inherit; padding: 2px 10px; cursor: pointer; }
.token .copy-status { color: var(--dim); }
table { border-collapse: collapse; }
table.timeline { width: 100%; table-layout: fixed; margin-top: 6px; }
table.timeline th { position: sticky; top: 0; background: #f3f4f6; text-align: left; padding: 4px 6px; border-bottom: 1px solid var(--line); z-index: 1; }
table.timeline th.step, table.timeline td.step { width: 56px; text-align: right; color: var(--dim); padding-right: 8px; }
table.timeline td { vertical-align: top; padding: 0; border-bottom: 1px solid #f0f2f4; }
table.timeline td.lane { border-left: 1px solid var(--line); }
.band { border-left: 4px solid transparent; padding-left: 3px; min-height: 18px; }
.band.ctx-nmi { border-color: var(--nmi); background: rgba(240, 163, 94, .10); }
.band.ctx-mc { border-color: var(--mc); background: rgba(217, 83, 79, .10); }
.band.ctx-bp { border-color: var(--bp); background: rgba(155, 107, 211, .10); }
.band.ctx-irq { border-color: var(--irq); background: rgba(74, 144, 217, .10); }
.cell { padding: 1px 4px; white-space: pre-wrap; word-break: break-word; }
.ctxname { white-space: nowrap; font-size: 11px; font-weight: 600; padding: 0 3px; border-radius: 2px; margin-right: 4px; color: #fff; }
.ctxname.ctx-nmi { background: var(--nmi); } .ctxname.ctx-mc { background: var(--mc); }
.ctxname.ctx-bp { background: var(--bp); } .ctxname.ctx-irq { background: var(--irq); }
.switch { color: #0b66c3; font-weight: 700; margin-right: 3px; }
tr.kind-site .cell { color: #0d6b7a; }
tr.kind-bad .cell { color: #b3261e; font-weight: 600; }
tr.kind-fold .cell { color: var(--dim); }
tr.ev td.step::before { content: "⚡"; font-size: 10px; margin-right: 2px; }
tr.sw td.step { color: #0b66c3; font-weight: 600; }
.part.warn, span.warn { color: #9a6700; font-weight: 600; }
tr.end td { text-align: center; font-weight: 600; padding: 4px; }
tr.tape-end td { text-align: center; color: var(--dim); font-style: italic; padding: 3px; }
button.fold { font: inherit; color: var(--dim); background: none; border: 1px dashed var(--line); cursor: pointer; padding: 0 6px; text-align: left; }
tr.current > td { box-shadow: inset 0 2px 0 #0b66c3, inset 0 -2px 0 #0b66c3; }
tr.highlight > td, tr.linked > td { background: var(--mark); }
table.bytegrid { margin: 6px 0 10px; }
table.bytegrid th, table.bytegrid td { border: 1px solid var(--line); padding: 2px 6px; text-align: left; white-space: nowrap; }
table.bytegrid th.byte-col { font-size: 11px; writing-mode: horizontal-tb; }
table.bytegrid td.b { text-align: center; width: 2.6em; }
.b-old { background: var(--old); } .b-new { background: var(--new); } .b-int3 { background: var(--int3); }
.b-written, .b-old-value { background: var(--written); } .b-stale { background: var(--stale); }
a.byte { color: inherit; text-decoration: none; display: block; }
a.byte:hover { outline: 2px solid #0b66c3; }
tr.fetch.cls-torn td.insn, tr.fetch.cls-crash td.insn { color: #b3261e; font-weight: 600; }
tr.untouched { color: var(--dim); }
#tooltip { position: absolute; z-index: 10; max-width: 520px; background: #1d232a; color: #fff; padding: 4px 8px; border-radius: 4px; font-size: 12px; pointer-events: none; }
table.matrix td, table.matrix th { border: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: top; }
table.matrix td.differs { background: #fbeceb; }
table.matrix td .how { display: block; color: var(--dim); font-size: 11.5px; }
table.matrix a { margin-right: 6px; }
`;

export const CLIENT_SCRIPT = String.raw`
(function () {
  "use strict";
  var page = JSON.parse(document.getElementById("report-data").textContent);
  var root = document.getElementById("report");
  var tooltip = document.getElementById("tooltip");
  var CTX = { "NMI": "ctx-nmi", "#MC": "ctx-mc", "#BP": "ctx-bp", "IRQ": "ctx-irq" };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function hex(v) { return (v < 16 ? "0" : "") + v.toString(16); }
  function ctxClass(kind) { return CTX[kind] || "ctx-other"; }
  function rowId(cx, at) { return cx.id + "-r" + at.row + (at.folded === undefined ? "" : "-" + at.folded); }
  function visible(e) { return e.offsetParent !== null; }

  // The current row for keyboard navigation, and the highlighted rows of a violation.
  function setCurrent(tr) {
    var old = document.querySelectorAll("tr.current");
    for (var i = 0; i < old.length; i++) old[i].classList.remove("current");
    tr.classList.add("current");
    tr.scrollIntoView({ block: "center" });
  }
  function expandFold(id) {
    var rows = document.querySelectorAll('tr[data-fold-of="' + id + '"]');
    for (var i = 0; i < rows.length; i++) rows[i].hidden = false;
    var button = document.querySelector('button[data-fold="' + id + '"]');
    if (button) button.setAttribute("aria-expanded", "true");
  }

  function header() {
    root.appendChild(el("h1", null, page.title));
    var summary = el("div", "summary");
    page.summary.forEach(function (line) { summary.appendChild(el("p", null, line)); });
    summary.appendChild(el("p", "keys", "Keys: n / p next / previous event, s / S next / previous scheduler switch. Hover a fetched byte at the site to see who wrote it."));
    root.appendChild(summary);
  }

  function matrix(mx) {
    root.appendChild(el("h2", null, "Verdicts"));
    var table = el("table", "matrix");
    var head = el("tr");
    head.appendChild(el("th", null, "protocol"));
    mx.scenarios.forEach(function (s) { head.appendChild(el("th", null, s)); });
    table.appendChild(head);
    mx.rows.forEach(function (row) {
      var tr = el("tr");
      tr.appendChild(el("th", null, row.protocol));
      row.cells.forEach(function (cell) {
        var td = el("td", cell.differs ? "differs" : null);
        td.dataset.protocol = row.protocol;
        td.dataset.scenario = cell.scenario;
        td.appendChild(el("span", "cell-text", cell.text));
        if (cell.links.length) {
          var links = el("span", "links");
          cell.links.forEach(function (l) {
            var a = el("a", "cx-link", l.property);
            a.href = "#" + l.id;
            links.appendChild(document.createTextNode(" "));
            links.appendChild(a);
          });
          td.appendChild(links);
        }
        if (cell.how) td.appendChild(el("span", "how", cell.how));
        tr.appendChild(td);
      });
      table.appendChild(tr);
    });
    root.appendChild(table);
    mx.notes.forEach(function (n) { root.appendChild(el("p", "settings", n)); });
  }

  function showViolation(cx, v) {
    if (!v.at) return;
    if (v.at.folded !== undefined) expandFold(cx.id + "-r" + v.at.row);
    var marked = document.querySelectorAll("tr.highlight");
    for (var i = 0; i < marked.length; i++) marked[i].classList.remove("highlight");
    var target = document.getElementById(rowId(cx, v.at));
    if (!target) return;
    target.classList.add("highlight");
    // The instructions involved: the violating CPU's fetches at the site around the step.
    cx.model.fetches.forEach(function (f, i) {
      if (f.cpu === v.cpu && f.firstStep <= v.step && v.step <= f.lastStep) {
        var row = document.getElementById(cx.id + "-f" + i);
        if (row) {
          if (row.dataset.groupOf) expandFold(row.dataset.groupOf);
          row.classList.add("highlight");
        }
      }
    });
    setCurrent(target);
  }

  function verdictBox(cx) {
    var m = cx.model;
    var box = el("div", "verdict");
    if (m.error !== undefined) box.appendChild(el("p", null, "The run failed: " + m.error));
    else if (m.violations.length === 0) {
      box.classList.add("holds");
      box.appendChild(el("p", null, m.property ? m.property + " " + m.propertyName + " holds on this run." : "Every property holds on this run."));
    } else {
      m.violations.forEach(function (v, i) {
        var a = el("a", "violation", "\u2717 " + v.line);
        a.href = v.at ? "#" + rowId(cx, v.at) : "#" + cx.id;
        a.dataset.violation = String(i);
        a.addEventListener("click", function (e) { e.preventDefault(); showViolation(cx, v); });
        box.appendChild(a);
      });
    }
    return box;
  }

  function tokenBox(m) {
    var box = el("div", "token");
    var command = m.replayCommand.replace(/^replay: /, "");
    box.appendChild(el("span", null, "replay:"));
    var code = el("code", "replay-command", command);
    box.appendChild(code);
    var button = el("button", "copy", "Copy");
    button.type = "button";
    var status = el("span", "copy-status");
    function fallback() {
      // No clipboard access: select the command so that Ctrl+C (or the menu) copies it.
      var range = document.createRange();
      range.selectNodeContents(code);
      var sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      status.textContent = "selected: press Ctrl+C to copy";
    }
    button.addEventListener("click", function () {
      if (!navigator.clipboard || !navigator.clipboard.writeText) { fallback(); return; }
      navigator.clipboard.writeText(command).then(function () { status.textContent = "copied"; }, fallback);
    });
    box.appendChild(button);
    box.appendChild(status);
    return box;
  }

  function bands(td, frames, content) {
    var inner = td;
    frames.forEach(function (f) {
      var d = el("div", "band " + ctxClass(f.kind));
      d.dataset.context = f.kind;
      d.title = f.kind + " handler" + (f.ist >= 0 ? " on IST " + f.ist : "");
      inner.appendChild(d);
      inner = d;
    });
    if (content) inner.appendChild(content);
    else if (inner === td) td.appendChild(el("div", "band"));
  }

  function cellContent(row, frames) {
    var cell = el("div", "cell");
    if (row.switched) {
      var s = el("span", "switch", "\u00bb");
      s.title = "the scheduler switched to this CPU";
      cell.appendChild(s);
    }
    if (row.context) {
      var top = frames[frames.length - 1];
      var name = el("span", "ctxname " + ctxClass(row.context), row.context + (top && top.ist >= 0 ? " \u00b7 IST " + top.ist : ""));
      cell.appendChild(name);
    }
    row.parts.forEach(function (p, i) {
      if (i > 0) cell.appendChild(document.createTextNode("; "));
      var span = el("span", "part tag-" + p.tag, p.text);
      if (p.warn !== undefined) span.appendChild(el("span", "warn", p.warn));
      cell.appendChild(span);
    });
    return cell;
  }

  function timeline(cx) {
    var m = cx.model;
    var table = el("table", "timeline");
    var head = el("tr");
    head.appendChild(el("th", "step", "step"));
    for (var c = 0; c < m.cpus; c++) head.appendChild(el("th", "lane-head", "CPU " + c));
    var thead = el("thead");
    thead.appendChild(head);
    table.appendChild(thead);
    var body = el("tbody");
    var frames = [];
    for (var k = 0; k < m.cpus; k++) frames.push([]);
    var tapeNoted = m.tapeEndStep < 0;

    function makeRow(row, id, foldOf) {
      var tr = el("tr", "kind-" + row.kind + (row.event ? " ev" : "") + (row.switched ? " sw" : ""));
      tr.id = id;
      tr.dataset.step = String(row.step);
      tr.dataset.cpu = String(row.cpu);
      tr.dataset.kind = row.kind;
      if (row.event) tr.dataset.event = "1";
      if (row.switched) tr.dataset.switch = "1";
      if (foldOf) { tr.dataset.foldOf = foldOf; tr.hidden = true; }
      tr.appendChild(el("td", "step", String(row.step)));
      if (row.cpu < 0) {
        tr.classList.add("end");
        var td = el("td", null, "\u2500\u2500 " + row.parts.map(function (p) { return p.text; }).join("; ") + " \u2500\u2500");
        td.colSpan = m.cpus;
        tr.appendChild(td);
        return tr;
      }
      var own = row.contextsAfter.length > row.contexts.length ? row.contextsAfter : row.contexts;
      for (var c = 0; c < m.cpus; c++) {
        var lane = el("td", "lane");
        lane.dataset.lane = String(c);
        if (c === row.cpu) {
          var content = cellContent(row, row.contexts);
          if (row.folded) {
            var button = el("button", "fold", row.parts[0].text + " \u25b8");
            button.type = "button";
            button.dataset.fold = id;
            button.setAttribute("aria-expanded", "false");
            button.addEventListener("click", function (e) {
              var b = e.currentTarget;
              var open = b.getAttribute("aria-expanded") !== "true";
              var rows = document.querySelectorAll('tr[data-fold-of="' + b.dataset.fold + '"]');
              for (var i = 0; i < rows.length; i++) rows[i].hidden = !open;
              b.setAttribute("aria-expanded", open ? "true" : "false");
            });
            content = el("div", "cell");
            if (row.switched) content.appendChild(el("span", "switch", "\u00bb"));
            content.appendChild(button);
          }
          bands(lane, own, content);
        } else bands(lane, frames[c], null);
        tr.appendChild(lane);
      }
      frames[row.cpu] = row.contextsAfter;
      return tr;
    }

    m.timeline.forEach(function (row, i) {
      if (!tapeNoted && row.step > m.tapeEndStep) {
        var note = el("tr", "tape-end");
        var td = el("td", null, "\u2504\u2504 the tape ends at step " + m.tapeEndStep + ": a fair round-robin finishes the run, with no further events \u2504\u2504");
        td.colSpan = m.cpus + 1;
        note.appendChild(td);
        body.appendChild(note);
        tapeNoted = true;
      }
      var id = cx.id + "-r" + i;
      var before = frames.map(function (f) { return f; });
      body.appendChild(makeRow(row, id, null));
      if (row.folded) {
        var after = frames;
        frames = before;
        row.folded.forEach(function (sub, j) { body.appendChild(makeRow(sub, id + "-" + j, id)); });
        frames = after;
      }
    });
    table.appendChild(body);
    return table;
  }

  function siteSection(cx, site, k) {
    var m = cx.model;
    var box = el("div", "site");
    box.dataset.site = String(k);
    box.appendChild(el("h3", null, "Patch site " + site.symbol + " (0x" + site.address.toString(16) + "), " + site.newBytes.length + " bytes"));
    box.appendChild(el("p", "settings mono", "old bytes " + site.oldBytes.map(hex).join(" ") + "   " + site.oldCode.join("; ")));
    box.appendChild(el("p", "settings mono", "new bytes " + site.newBytes.map(hex).join(" ") + "   " + site.newCode.join("; ")));
    var end = site.address + site.newBytes.length;
    var inSite = function (a) { return a >= site.address && a < end; };
    var table = el("table", "bytegrid");
    var head = el("tr");
    ["step", "CPU", "what"].forEach(function (t) { head.appendChild(el("th", null, t)); });
    site.byteSymbols.forEach(function (s) { head.appendChild(el("th", "byte-col", s)); });
    head.appendChild(el("th", null, "instruction"));
    table.appendChild(head);

    function labelClass(label) { return "b-" + label.replace(/ /g, "-"); }
    function grid(tr, fill) {
      for (var j = 0; j < site.newBytes.length; j++) {
        var td = el("td", "b");
        fill(td, site.address + j);
        tr.appendChild(td);
      }
    }
    var image = el("tr", "image");
    image.appendChild(el("td", null, "\u2013"));
    image.appendChild(el("td", null, ""));
    image.appendChild(el("td", null, "as loaded"));
    grid(image, function (td, a) {
      td.textContent = hex(site.oldBytes[a - site.address]);
      td.classList.add("b-old");
    });
    image.appendChild(el("td", "insn", site.oldCode.join("; ")));
    table.appendChild(image);

    var items = [];
    m.writes.forEach(function (w) {
      if (w.bytes.some(function (b) { return inSite(b.address); })) items.push({ step: w.step, order: 0, write: w });
    });
    m.fetches.forEach(function (f, i) {
      if (inSite(f.address)) items.push({ step: f.firstStep, order: 1, fetch: f, index: i });
    });
    items.sort(function (a, b) { return a.step - b.step || a.order - b.order; });

    var group = null;
    var groupCount = 0;
    function closeGroup() {
      if (group && group.rows.length >= 4) {
        var summary = el("tr", "untouched-summary");
        var td = el("td", null, "");
        td.colSpan = site.newBytes.length + 4;
        var b = el("button", "fold", group.rows.length + " fetches of old instructions, every byte as loaded (steps " + group.first + "\u2013" + group.last + ") \u25b8");
        b.type = "button";
        b.dataset.fold = group.id;
        b.setAttribute("aria-expanded", "false");
        b.addEventListener("click", function (e) {
          var bt = e.currentTarget;
          var open = bt.getAttribute("aria-expanded") !== "true";
          var rows = document.querySelectorAll('tr[data-fold-of="' + bt.dataset.fold + '"]');
          for (var i = 0; i < rows.length; i++) rows[i].hidden = !open;
          bt.setAttribute("aria-expanded", open ? "true" : "false");
        });
        td.appendChild(b);
        summary.appendChild(td);
        table.insertBefore(summary, group.rows[0]);
        group.rows.forEach(function (r) { r.hidden = true; r.dataset.foldOf = group.id; r.dataset.groupOf = group.id; });
      }
      group = null;
    }

    items.forEach(function (it) {
      if (it.write) {
        closeGroup();
        var w = it.write;
        var tr = el("tr", "write");
        tr.id = cx.id + "-w" + w.index;
        tr.dataset.write = String(w.index);
        tr.dataset.cpu = String(w.cpu);
        tr.dataset.step = String(w.step);
        tr.appendChild(el("td", null, String(w.step)));
        tr.appendChild(el("td", null, String(w.cpu)));
        tr.appendChild(el("td", null, "\u270e write " + w.index + " (" + w.size + "-byte store)"));
        grid(tr, function (td, a) {
          w.bytes.forEach(function (b) {
            if (b.address !== a) return;
            td.textContent = hex(b.value);
            td.classList.add(labelClass(b.label));
            td.dataset.tip = b.label + ": " + b.symbol + " written by CPU " + w.cpu + " at step " + w.step + " (write #" + b.seq + ")";
          });
        });
        tr.appendChild(el("td", "insn", ""));
        table.appendChild(tr);
        return;
      }
      var f = it.fetch;
      var row = el("tr", "fetch cls-" + f.cls + (f.untouched ? " untouched" : ""));
      row.id = cx.id + "-f" + it.index;
      row.dataset.fetch = String(it.index);
      row.dataset.cpu = String(f.cpu);
      row.dataset.step = String(f.firstStep);
      row.appendChild(el("td", null, f.firstStep === f.lastStep ? String(f.firstStep) : f.firstStep + "\u2013" + f.lastStep));
      row.appendChild(el("td", null, String(f.cpu) + (f.context ? " [" + f.context + "]" : "")));
      row.appendChild(el("td", null, "fetch"));
      function byteLink(b, i) {
        var a = el("a", "byte " + labelClass(b.label), hex(b.value));
        a.dataset.byte = String(i);
        a.dataset.address = String(b.address);
        a.dataset.label = b.label;
        a.dataset.fetchStep = String(b.fetchStep);
        a.dataset.tip = "byte " + i + " " + b.symbol + " = " + hex(b.value) + ": " + b.label + ", " + b.detail + ", fetched at step " + b.fetchStep + b.note;
        if (b.writer) {
          a.href = "#" + cx.id + "-w" + b.writer.write;
          a.dataset.writerCpu = String(b.writer.cpu);
          a.dataset.writerStep = String(b.writer.step);
          a.dataset.writerSeq = String(b.writer.seq);
          a.dataset.write = String(b.writer.write);
        } else a.href = "#" + cx.id + "-f" + it.index;
        return a;
      }
      grid(row, function (td, a) {
        f.bytes.forEach(function (b, i) {
          if (b.address === a) { td.appendChild(byteLink(b, i)); td.classList.add(labelClass(b.label)); }
        });
      });
      var insn = el("td", "insn", f.symbol + "  " + f.text + "  (" + f.cls + ")");
      f.bytes.forEach(function (b, i) {
        if (!inSite(b.address)) { insn.appendChild(document.createTextNode(" + ")); insn.appendChild(byteLink(b, i)); }
      });
      if (f.expected) insn.appendChild(el("div", null, "expected: old " + f.expected.old + ", or new " + f.expected.new));
      row.appendChild(insn);
      table.appendChild(row);
      if (f.untouched) {
        if (!group) group = { id: cx.id + "-g" + (groupCount++), rows: [], first: f.firstStep, last: f.lastStep };
        group.rows.push(row);
        group.last = f.lastStep;
      } else closeGroup();
    });
    closeGroup();
    box.appendChild(table);
    return box;
  }

  function counterexample(cx) {
    var m = cx.model;
    var sec = el("section", "counterexample");
    sec.id = cx.id;
    sec.appendChild(el("h2", null, cx.title));
    sec.appendChild(el("p", "settings", m.protocol + " on " + m.scenario + "  (" + m.settings + ")"));
    sec.appendChild(verdictBox(cx));
    sec.appendChild(tokenBox(m));
    sec.appendChild(el("p", "tape", "tape: " + m.tapeLength + " values, " + m.tapeNonZero + " of them non-zero (preemptions, events, branch choices); the run ends after step " + m.lastStep + ": " + m.status));
    sec.appendChild(el("h3", null, "Timeline"));
    if (!m.actorsKnown) sec.appendChild(el("p", "settings", "(who took silent steps is unknown: the step-by-step re-run differed; shown from the log alone)"));
    sec.appendChild(timeline(cx));
    if (m.sites.length) {
      sec.appendChild(el("h3", null, "Patch sites: every write and every instruction fetched there (iced-x86)"));
      m.sites.forEach(function (s, k) { sec.appendChild(siteSection(cx, s, k)); });
      if (!m.fetches.length) sec.appendChild(el("p", null, "No CPU fetched an instruction at a patch site in this run."));
    }
    if (cx.note) sec.appendChild(el("p", "settings", cx.note));
    root.appendChild(sec);
  }

  // Tooltips of the site's bytes, and the write a fetched byte came from.
  document.addEventListener("mouseover", function (e) {
    var t = e.target.closest ? e.target.closest("[data-tip]") : null;
    if (!t) return;
    tooltip.textContent = t.dataset.tip;
    tooltip.hidden = false;
    var r = t.getBoundingClientRect();
    tooltip.style.left = (window.scrollX + r.left) + "px";
    tooltip.style.top = (window.scrollY + r.bottom + 4) + "px";
    if (t.dataset.write !== undefined && t.hash) {
      var w = document.getElementById(t.hash.slice(1));
      if (w) w.classList.add("linked");
    }
  });
  document.addEventListener("mouseout", function (e) {
    var t = e.target.closest ? e.target.closest("[data-tip]") : null;
    if (!t) return;
    tooltip.hidden = true;
    var linked = document.querySelectorAll("tr.linked");
    for (var i = 0; i < linked.length; i++) linked[i].classList.remove("linked");
  });

  // n / p: next / previous event; s / S: next / previous scheduler switch.
  function move(selector, forward) {
    var list = Array.prototype.filter.call(document.querySelectorAll(selector), visible);
    if (!list.length) return;
    var cur = document.querySelector("tr.current");
    var pick = null;
    if (!cur) pick = forward ? list[0] : list[list.length - 1];
    else if (forward) {
      for (var i = 0; i < list.length && !pick; i++)
        if (cur.compareDocumentPosition(list[i]) & Node.DOCUMENT_POSITION_FOLLOWING) pick = list[i];
    } else {
      for (var j = list.length - 1; j >= 0 && !pick; j--)
        if (cur.compareDocumentPosition(list[j]) & Node.DOCUMENT_POSITION_PRECEDING) pick = list[j];
    }
    if (pick) setCurrent(pick);
  }
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var tag = e.target && e.target.tagName;
    if (tag === "INPUT" || tag === "TEXTAREA") return;
    if (e.key === "n") move('tr[data-event="1"]', true);
    else if (e.key === "p") move('tr[data-event="1"]', false);
    else if (e.key === "s") move('tr[data-switch="1"]', true);
    else if (e.key === "S") move('tr[data-switch="1"]', false);
    else return;
    e.preventDefault();
  });

  header();
  if (page.matrix) matrix(page.matrix);
  page.counterexamples.forEach(counterexample);
  document.body.dataset.rendered = "1";
})();
`;
