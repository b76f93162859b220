"""Watch a canvas being denoised: an HTML replay of recorded runs, and a live terminal view.

A masked diffusion LM does not write left to right: each step it commits the positions it is
most sure of, anywhere in the canvas, and the constraint commits forced positions for free. The
final text hides all of that. These views show *the order in which the output was decided*:
which tokens came first (often the easy ones: closing quotes, pads, small numbers), which were
forced by the schema without a forward pass, and where the model hesitated until the end. That is
what you look at when choosing ``steps`` / ``block_size`` / remasking, when a hole budget is too
tight (a long run of pads, or none), or when a field's value looks wrong and you want to see
whether it was decided early (from the prompt) or squeezed in last.

- :func:`trace_frames`: a JSON-able per-position / per-frame description of one recorded
  :class:`~constrained_dlm.decode.sampler.Result` (``SamplerOptions(record_history=True)``).
- :func:`write_trace_html`: one self-contained HTML file (no network, works offline) that replays
  each run with a slider and play / pause. Tokens are coloured by the step that committed them
  (viridis: dark = early, yellow = late), masked positions are grey boxes, fixed scaffold tokens
  plain text, pads a faint "∅". Each masked box is as wide as the token it will become, so
  nothing moves while you scrub. ``page.html#frame=3`` opens every record at frame 3; without
  the hash the page opens at the final frame.
- :class:`TerminalView`: redraws the canvas(es) in place with ANSI colours while ``denoise``
  runs (pass it as the ``on_step`` callback); one line per step when the stream is not a TTY.
"""

from __future__ import annotations

import html
import json
import pathlib
import shutil
import sys
import unicodedata

import numpy as np

__all__ = ["trace_frames", "write_trace_html", "TerminalView"]

_VISIBLE = {" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍"}


def _show(text: str) -> str:
    """Make whitespace and control characters visible (display only)."""
    out = []
    for ch in text:
        if ch in _VISIBLE:
            out.append(_VISIBLE[ch])
        elif unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def _token_text(vocab, tid: int) -> str:
    """One token's display text; partial UTF-8 shows as \\xNN escapes."""
    if tid == vocab.pad_id:
        return "∅"
    if tid == vocab.mask_id:
        return "▒"
    data = vocab.token_bytes[tid] if 0 <= tid < vocab.size else None
    if data is None:
        return f"⟨{tid}⟩"
    return _show(data.decode("utf-8", errors="backslashreplace"))


def _bytes_text(vocab, ids) -> str:
    data = b"".join(vocab.token_bytes[i] or b"" for i in ids if i not in (vocab.pad_id, vocab.mask_id))
    return data.decode("utf-8", errors="backslashreplace")


def _hole_name(hole, k: int) -> str:
    return hole.spec.name or hole.spec.pointer or f"hole {k}"


def _hole_index(template) -> np.ndarray:
    """Per template position: the index of its hole, or -1 for a fixed scaffold token."""
    of = np.full(len(template), -1, dtype=np.int64)
    for k, h in enumerate(template.holes):
        of[h.start:h.start + h.length] = k
    return of


def trace_frames(result) -> dict:
    """Describe how ``result`` was denoised (needs ``SamplerOptions(record_history=True)``).

    Frame k is ``result.history[k]``; a hole position's ``step`` is the first frame from which
    it stays unmasked (the step that committed it). Per frame: ``nfe`` (forward passes so far),
    ``committed`` (positions committed in that frame), ``forced`` (those of them committed with no
    new forward pass), ``masked`` (hole positions still masked). Per position: ``kind``
    ("fixed" / "hole"), ``hole`` and ``name``, ``step`` (None for fixed), final token ``id``,
    display ``text`` (whitespace made visible), ``bytes`` (the token's exact bytes, hex), ``pad``.
    """
    if not result.history:
        raise ValueError("this result has no history: decode with SamplerOptions(record_history=True)")
    tpl, vocab = result.template, result.template.vocab
    canvases = np.stack([np.asarray(ids) for _, ids in result.history])     # (F, T)
    nfes = [int(n) for n, _ in result.history]
    final = [int(t) for t in result.token_ids]
    hole_of = _hole_index(tpl)
    masked = canvases == vocab.mask_id
    n_frames = len(canvases)
    # the step of a position: one past the last frame in which it was masked
    last_masked = np.where(masked.any(0), n_frames - 1 - np.argmax(masked[::-1], axis=0), -1)
    steps = last_masked + 1

    positions = []
    for p, tid in enumerate(final):
        k = int(hole_of[p])
        data = vocab.token_bytes[tid] if 0 <= tid < vocab.size and tid != vocab.pad_id else None
        positions.append({
            "kind": "fixed" if k < 0 else "hole",
            "hole": None if k < 0 else k,
            "name": None if k < 0 else _hole_name(tpl.holes[k], k),
            "step": None if k < 0 else int(steps[p]),
            "id": tid,
            "text": _token_text(vocab, tid),
            "bytes": (data or b"").hex(),
            "pad": k >= 0 and tid == vocab.pad_id,
        })

    in_hole = hole_of >= 0
    frames = []
    for f in range(n_frames):
        committed = int(((steps == f) & in_hole).sum())
        forced = committed if f > 0 and nfes[f] == nfes[f - 1] else 0
        frames.append({"nfe": nfes[f], "committed": committed, "forced": forced,
                       "masked": int((masked[f] & in_hole).sum())})

    holes = []
    for k, h in enumerate(tpl.holes):
        ids = final[h.start:h.start + h.length]
        hs = [int(s) for s in steps[h.start:h.start + h.length]]
        holes.append({"index": k, "name": _hole_name(h, k), "pointer": h.spec.pointer,
                      "start": h.start, "length": h.length,
                      "used": sum(1 for t in ids if t != vocab.pad_id),
                      "first_step": min(hs, default=None), "last_step": max(hs, default=None),
                      "text": _bytes_text(vocab, ids)})

    return {"text": result.text, "nfe": int(result.nfe), "forced": int(result.forced),
            "steps": n_frames - 1, "holes": holes, "positions": positions, "frames": frames}


# --- HTML -----------------------------------------------------------------------------------

# viridis, sampled: early steps dark purple, late steps yellow
_VIRIDIS = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e",
            "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725"]


def _scale(t: float) -> tuple[int, int, int]:
    t = min(1.0, max(0.0, t)) * (len(_VIRIDIS) - 1)
    i = min(int(t), len(_VIRIDIS) - 2)
    a, b = _VIRIDIS[i], _VIRIDIS[i + 1]
    u = t - i
    return tuple(round(int(a[j:j + 2], 16) * (1 - u) + int(b[j:j + 2], 16) * u) for j in (1, 3, 5))


def _step_colour(step: int, last: int) -> tuple[tuple[int, int, int], str]:
    """Background for a token committed at ``step`` of 1..last, and a readable text colour."""
    rgb = _scale(0.0 if last <= 1 else (step - 1) / (last - 1))
    luminance = 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]
    return rgb, "#111" if luminance > 140 else "#fff"


_CSS = """
:root { --fg: #1d2126; --muted: #6b7280; --line: #e3e6ea; }
* { box-sizing: border-box; }
body { margin: 0; background: #f6f7f9; color: var(--fg);
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1080px; margin: 0 auto; padding: 20px 24px 48px; }
h1 { font-size: 22px; margin: 4px 0 2px; }
h2 { font-size: 16px; margin: 0 0 10px; display: flex; flex-wrap: wrap; gap: 4px 12px;
     align-items: baseline; }
.sub, .meta { color: var(--muted); font-size: 13px; font-weight: normal; }
.keys { display: flex; flex-wrap: wrap; gap: 6px 18px; margin: 10px 0 6px; font-size: 13px;
        color: var(--muted); align-items: center; }
.keys .t { margin-right: 4px; }
section.rec { background: #fff; border: 1px solid var(--line); border-radius: 10px;
              padding: 16px 18px 14px; margin: 16px 0; box-shadow: 0 1px 2px rgba(0,0,0,.04); }
.ctl { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 10px; margin-bottom: 8px; }
.ctl button { font: inherit; font-size: 14px; min-width: 36px; padding: 3px 10px; cursor: pointer;
              border: 1px solid #c9ced6; background: #fff; border-radius: 6px; color: var(--fg); }
.ctl button:hover { background: #f0f2f5; }
.ctl button.play { min-width: 84px; }
.ctl input[type=range] { flex: 1 1 200px; min-width: 160px; accent-color: #31688e; }
.stat { font: 13px/1.4 ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono",
        monospace; color: #333; width: 100%; }
.stat b { font-weight: 600; }
.bar { display: flex; align-items: center; gap: 8px; font-size: 12px; color: var(--muted);
       margin: 2px 0 10px; }
.bar .grad { height: 10px; flex: 0 1 260px; border-radius: 5px; }
.canvas { display: flex; flex-wrap: wrap; align-items: center; gap: 4px 0; padding: 10px 12px;
          background: #fbfbfc; border: 1px solid var(--line); border-radius: 8px;
          font: 14px/1.25 ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono",
          monospace; }
.t { white-space: pre; padding: 2px 2px; border-radius: 3px; overflow-wrap: anywhere;
     max-width: 100%; background: var(--c); color: var(--tc); border: 1px solid transparent;
     margin: 0 1px; }
.t.fx { background: none; color: #1d2126; padding: 2px 0; margin: 0; }
.t.pad { background: var(--c); color: #9aa1a9; }
.t.m { background: repeating-linear-gradient(135deg, #c3c9d1 0 3px, #d7dbe0 3px 6px) !important;
       color: transparent !important; }
.t.new { border-color: #e8175d; box-shadow: 0 0 0 1px #e8175d; }
.br { flex-basis: 100%; height: 0; }
details { margin-top: 10px; }
summary { cursor: pointer; color: #333; font-size: 14px; }
pre.final { white-space: pre-wrap; overflow-wrap: anywhere; background: #f3f4f6; padding: 8px 10px;
            border-radius: 6px; margin: 6px 0 0; font-size: 13px; }
table { border-collapse: collapse; margin-top: 8px; font-size: 13px; width: 100%; }
th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid var(--line);
         vertical-align: top; }
th { color: var(--muted); font-weight: 600; }
td.v { font-family: ui-monospace, Menlo, Consolas, "DejaVu Sans Mono", monospace;
       white-space: pre-wrap; overflow-wrap: anywhere; }
.note { color: var(--muted); font-size: 13px; }
"""

_JS = r"""
(function () {
  var data = JSON.parse(document.getElementById('trace-data').textContent);
  var m = /(?:^#|[#&])frame=(-?\d+)/.exec(location.hash);
  var start = m ? parseInt(m[1], 10) : null;
  document.querySelectorAll('section.rec').forEach(function (sec, r) {
    var tr = data[r], K = tr.frames.length - 1, holes = 0, cur = K, timer = null;
    var cells = Array.prototype.map.call(sec.querySelectorAll('.canvas [data-s]'), function (el) {
      holes += 1; return [el, parseInt(el.dataset.s, 10)];
    });
    var slider = sec.querySelector('input[type=range]'), stat = sec.querySelector('.stat');
    var play = sec.querySelector('.play');
    function show(k) {
      k = Math.max(0, Math.min(K, k)); cur = k; slider.value = k;
      for (var i = 0; i < cells.length; i++) {
        var el = cells[i][0], s = cells[i][1];
        el.classList.toggle('m', s > k);
        el.classList.toggle('new', s === k && k > 0);
      }
      var f = tr.frames[k];
      stat.textContent = 'step ' + k + ' / ' + K + ', forward passes ' + f.nfe + ', committed ' +
        f.committed + ' (forced ' + f.forced + '), masked ' + f.masked + ' / ' + holes;
    }
    function stop() { if (timer) { clearInterval(timer); timer = null; } play.textContent = '▶ play'; }
    function go() {
      if (cur >= K) show(0);
      play.textContent = '❚❚ pause';
      timer = setInterval(function () { if (cur >= K) stop(); else show(cur + 1); }, 700);
    }
    play.addEventListener('click', function () { if (timer) stop(); else go(); });
    sec.querySelector('.prev').addEventListener('click', function () { stop(); show(cur - 1); });
    sec.querySelector('.next').addEventListener('click', function () { stop(); show(cur + 1); });
    slider.addEventListener('input', function () { stop(); show(parseInt(slider.value, 10)); });
    window.addEventListener('hashchange', function () {
      var h = /(?:^#|[#&])frame=(-?\d+)/.exec(location.hash);
      if (h) { stop(); show(parseInt(h[1], 10)); }
    });
    show(start === null ? K : (start < 0 ? K + 1 + start : start));
  });
})();
"""


def _esc(s) -> str:
    return html.escape(str(s), quote=True)


def _record_html(r: int, tr: dict) -> str:
    K = tr["steps"]
    cells = []
    for p, pos in enumerate(tr["positions"]):
        text = _esc(pos["text"])
        if pos["kind"] == "fixed":
            cells.append(f'<span class="t fx" title="fixed · id {pos["id"]}">{text}</span>')
        else:
            s = pos["step"]
            rgb, tc = _step_colour(s, K)
            if pos["pad"]:
                style = f"--c:rgba({rgb[0]},{rgb[1]},{rgb[2]},.16)"
                cls = "t pad"
            else:
                style = f"--c:rgb({rgb[0]},{rgb[1]},{rgb[2]});--tc:{tc}"
                cls = "t"
            what = "pad" if pos["pad"] else f"id {pos['id']}"
            title = f"{pos['name']} · step {s} · {what}"
            cells.append(f'<span class="{cls}" style="{style}" data-s="{s}" '
                         f'title="{_esc(title)}">{text}</span>')
        if pos["text"].endswith("↵"):
            cells.append('<span class="br"></span>')
    stops = ", ".join("rgb(%d,%d,%d)" % _scale(i / 10) for i in range(11))
    rows = "".join(
        f'<tr><td>{_esc(h["name"])}</td><td>{_esc(h["pointer"])}</td>'
        f'<td>{h["used"]} / {h["length"]}</td>'
        f'<td>{_esc(h["first_step"])}–{_esc(h["last_step"])}</td>'
        f'<td class="v">{_esc(h["text"])}</td></tr>' for h in tr["holes"])
    n_hole = sum(h["length"] for h in tr["holes"])
    f0 = tr["frames"][-1]
    return f"""
<section class="rec" id="record-{r}">
  <h2>Record {r + 1}<span class="meta">{len(tr["positions"])} positions · {n_hole} in
    {len(tr["holes"])} hole(s) · {K} steps · {tr["nfe"]} forward passes · {tr["forced"]} forced</span></h2>
  <div class="ctl">
    <button class="prev" title="previous step">◀</button>
    <button class="play">▶ play</button>
    <button class="next" title="next step">▶</button>
    <input type="range" min="0" max="{K}" value="{K}" aria-label="step">
    <div class="stat">step {K} / {K}, forward passes {f0["nfe"]}, committed {f0["committed"]}
      (forced {f0["forced"]}), masked {f0["masked"]} / {n_hole}</div>
  </div>
  <div class="bar"><span>committed at step 1</span>
    <span class="grad" style="background:linear-gradient(to right, {stops})"></span>
    <span>step {K}</span></div>
  <div class="canvas">{"".join(cells)}</div>
  <details open><summary>Final text and holes</summary>
    <pre class="final">{_esc(tr["text"])}</pre>
    <table><tr><th>hole</th><th>pointer</th><th>tokens used</th><th>steps</th><th>value</th></tr>
    {rows}</table>
  </details>
</section>"""


def write_trace_html(results, path, *, title: str = "constrained-dlm trace",
                     max_records: int = 50) -> pathlib.Path:
    """Write one self-contained HTML page replaying each result's denoising; return its path.

    ``results``: a Result or a list of them, decoded with ``record_history=True``. Only the first
    ``max_records`` are written. Open ``page.html#frame=N`` to start every record at frame N.
    """
    if not isinstance(results, (list, tuple)):
        results = [results]
    shown = list(results)[:max_records]
    traces = [trace_frames(r) for r in shown]
    # JSON inside <script>: escape <, >, & so no token can close the tag
    payload = (json.dumps(traces, ensure_ascii=False).replace("<", "\\u003c")
               .replace(">", "\\u003e").replace("&", "\\u0026"))
    more = (f'<p class="note">Showing the first {len(shown)} of {len(results)} records.</p>'
            if len(results) > len(shown) else "")
    sw = _step_colour(1, 3), _step_colour(3, 3)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_esc(title)}</title>
<style>{_CSS}</style></head>
<body><main>
<h1>{_esc(title)}</h1>
<p class="sub">{len(shown)} record(s). Each step the model commits its most confident positions;
forced positions (the schema allows one token) are committed without a forward pass. Tokens are
coloured by the step that committed them; hover a token for its hole, step and id.</p>
<div class="keys">
  <span><span class="t fx" style="font-family:monospace">{{"</span> fixed scaffold</span>
  <span><span class="t m" style="font-family:monospace">xx</span> still masked</span>
  <span><span class="t" style="--c:rgb{sw[0][0]};--tc:{sw[0][1]};font-family:monospace">early</span>
    <span class="t" style="--c:rgb{sw[1][0]};--tc:{sw[1][1]};font-family:monospace">late</span>
    committed</span>
  <span><span class="t new" style="font-family:monospace">&nbsp;</span> committed this step</span>
  <span><span class="t pad" style="--c:#eef0f2;font-family:monospace">∅</span> pad (value ended)</span>
  <span>␣ space · ↵ newline · ⇥ tab</span>
</div>
{more}
{"".join(_record_html(i, tr) for i, tr in enumerate(traces))}
</main>
<script type="application/json" id="trace-data">{payload}</script>
<script>{_JS}</script>
</body></html>
"""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


# --- terminal -------------------------------------------------------------------------------

_RESET, _DIM = "\x1b[0m", "\x1b[2m"
# newest first: black on yellow, then a warm-to-cool fade of the text colour (256-colour codes)
_RECENCY = ["\x1b[30;48;5;220m", "\x1b[38;5;214m", "\x1b[38;5;178m", "\x1b[38;5;142m",
            "\x1b[38;5;108m", "\x1b[38;5;73m", "\x1b[38;5;67m"]


def _width(s: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in s)


class TerminalView:
    """Live view of the canvas(es) while ``denoise`` runs; pass it as ``on_step``.

    On a TTY each update redraws in place: masked = dim "░", fixed scaffold = default colour,
    committed = coloured by recency (just committed: black on yellow, older fades to blue),
    pads = dim "∅". Otherwise one line per update: ``step 3 nfe 3: 12/40 masked``.
    """

    def __init__(self, template_or_templates, stream=None):
        ts = template_or_templates
        self.templates = list(ts) if isinstance(ts, (list, tuple)) else [ts]
        self.stream = sys.stderr if stream is None else stream
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty and isatty())
        self.hole_of = [_hole_index(t) for t in self.templates]
        self.committed_at = [np.full(len(t), -1, dtype=np.int64) for t in self.templates]
        self._drawn = 0          # screen lines of the last drawing, to move back over them

    def grew(self, b: int, template) -> None:
        """Row ``b`` runs on in a grown template (holes that filled up got more room: see
        ``decode/grow.py``); what was committed keeps its step."""
        old, at = self.templates[b], self.committed_at[b]
        new_at = np.full(len(template), -1, dtype=np.int64)
        for h_old, h_new in zip(old.holes, template.holes):
            kept = h_old.length - (h_new.length > h_old.length)    # a grown hole's last is open
            new_at[h_new.start:h_new.start + kept] = at[h_old.start:h_old.start + kept]
        self.templates[b], self.committed_at[b] = template, new_at
        self.hole_of[b] = _hole_index(template)

    def update(self, step: int, nfe: int, ids_rows: list[np.ndarray]) -> None:
        """Show the canvases after ``step`` (``ids_rows[b]``: template b's ids)."""
        if len(ids_rows) != len(self.templates):
            raise ValueError(f"{len(ids_rows)} canvases for {len(self.templates)} templates")
        masked = total = 0
        for t, hole_of, at, ids in zip(self.templates, self.hole_of, self.committed_at, ids_rows):
            ids = np.asarray(ids)
            if len(ids) != len(t):
                raise ValueError(f"canvas of length {len(ids)} for a template of length {len(t)}")
            is_masked = ids == t.vocab.mask_id
            at[(at < 0) & ~is_masked & (hole_of >= 0)] = step
            masked += int((is_masked & (hole_of >= 0)).sum())
            total += int((hole_of >= 0).sum())
        if not self.tty:
            self.stream.write(f"step {step} nfe {nfe}: {masked}/{total} masked\n")
            self.stream.flush()
            return
        cols, rows = shutil.get_terminal_size((100, 30))
        lines = [f"\x1b[1mstep {step}\x1b[22m  nfe {nfe}  masked {masked}/{total}"]
        for b, (t, hole_of, at, ids) in enumerate(zip(self.templates, self.hole_of,
                                                      self.committed_at, ids_rows)):
            if len(self.templates) > 1:
                lines.append(f"{_DIM}── {b} {'─' * max(0, min(cols, 60) - 6 - len(str(b)))}{_RESET}")
            lines += self._layout(t, hole_of, at, np.asarray(ids), step, max(20, cols - 1))
        limit = max(3, rows - 2)
        if len(lines) > limit:
            lines = lines[:limit - 1] + [f"{_DIM}… {len(lines) - limit + 1} more lines{_RESET}"]
        out = ["\x1b[?25l"]                                 # hide the cursor while drawing
        if self._drawn:
            out.append(f"\x1b[{self._drawn}F")              # back to the first line drawn
        out.append("\x1b[J")                                # clear from there down
        out.append("\n".join(lines) + "\n")
        self.stream.write("".join(out))
        self.stream.flush()
        self._drawn = len(lines)

    __call__ = update

    def _layout(self, t, hole_of, at, ids, step: int, cols: int) -> list[str]:
        """The canvas as screen lines of at most ``cols`` cells (ANSI codes take no cells)."""
        v = t.vocab
        lines, cur, used = [], [], 0
        for p, tid in enumerate(ids.tolist()):
            if hole_of[p] >= 0 and tid == v.mask_id:
                text, style = "░", _DIM
            elif hole_of[p] >= 0 and tid == v.pad_id:
                text, style = "∅", _DIM
            else:
                text = _token_text(v, tid)
                style = "" if hole_of[p] < 0 else _RECENCY[min(step - at[p], len(_RECENCY) - 1)]
            w = _width(text)
            if used and used + w > cols:
                lines.append("".join(cur))
                cur, used = [], 0
            while w > cols:                                 # a token wider than the terminal
                lines.append(style + text[:cols] + (_RESET if style else ""))
                text = text[cols:]
                w = _width(text)
            cur.append(style + text + _RESET if style else text)
            used += w
            if text.endswith("↵"):
                lines.append("".join(cur))
                cur, used = [], 0
        if cur or not lines:
            lines.append("".join(cur))
        return lines

    def close(self) -> None:
        """Leave the last drawing on screen and restore the cursor."""
        if self.tty:
            self.stream.write(_RESET + "\x1b[?25h")
        self.stream.flush()

    def __enter__(self) -> "TerminalView":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
