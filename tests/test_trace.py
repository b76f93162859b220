"""Traces: the HTML replay and the terminal view agree with the recorded denoising history."""

from __future__ import annotations

import html
import inspect
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

import constrained_dlm
from constrained_dlm import RandomDenoiser, SamplerOptions, Vocabulary, denoise
from constrained_dlm.api import compile_json_schema, compile_regex
from constrained_dlm.trace import TerminalView, trace_frames, write_trace_html

TOKENIZER = Path(constrained_dlm.__file__).parent / "assets" / "default-model" / "tokenizer.json"
SCHEMA = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 12},
                                           "age": {"type": "integer"}},
          "required": ["name", "age"]}


@pytest.fixture(scope="module")
def vocab():
    return Vocabulary.from_tokenizer(str(TOKENIZER))


def run(vocab, templates, steps=6, seed=0):
    return denoise(RandomDenoiser(vocab, seed=seed), templates, None,
                   SamplerOptions(steps=steps, record_history=True))


@pytest.fixture(scope="module")
def results(vocab):
    """A batch of two different templates (so one canvas finishes while the other runs)."""
    return run(vocab, [compile_json_schema(SCHEMA, vocab), compile_regex("[a-z]{2,6}-[0-9]{3}", vocab)])


def test_history_snapshots_are_copies(results):
    """Each snapshot must be its own array: trace_frames reads every frame, not just the last."""
    h = results[0].history
    assert not any(np.shares_memory(h[0][1], a) for _, a in h[1:])


def test_trace_frames_match_history(results):
    for r in results:
        tr = trace_frames(r)
        json.dumps(tr)                                          # JSON-able
        vocab, mask = r.template.vocab, r.template.vocab.mask_id
        hist = [np.asarray(a) for _, a in r.history]
        n_holes = r.template.num_hole_positions
        assert len(tr["frames"]) == len(hist) and tr["steps"] == len(hist) - 1
        assert len(tr["positions"]) == len(r.template)
        assert tr["frames"][0]["masked"] == n_holes
        assert tr["frames"][-1]["masked"] == 0
        masked = [f["masked"] for f in tr["frames"]]
        assert masked == sorted(masked, reverse=True)           # never re-masked
        assert sum(f["committed"] for f in tr["frames"]) == n_holes
        assert sum(f["forced"] for f in tr["frames"]) == r.forced
        assert [f["nfe"] for f in tr["frames"]] == [n for n, _ in r.history]
        for f, (prev, cur) in enumerate(zip(tr["frames"], tr["frames"][1:]), start=1):
            assert cur["forced"] in (0, cur["committed"])
            assert (cur["forced"] > 0) <= (cur["nfe"] == prev["nfe"])
        # every hole position committed exactly once, at the frame the history says
        for p, pos in enumerate(tr["positions"]):
            col = [int(a[p]) for a in hist]
            assert pos["id"] == r.token_ids[p]
            if pos["kind"] == "fixed":
                assert pos["step"] is None and pos["hole"] is None
                assert col == [int(r.template.token_ids[p])] * len(hist)
                continue
            s = pos["step"]
            assert 1 <= s < len(hist)
            assert all(c == mask for c in col[:s])
            assert all(c == pos["id"] for c in col[s:])
            assert tr["frames"][s]["committed"] >= 1
            assert pos["pad"] == (pos["id"] == vocab.pad_id)
        # commit steps inside a hole agree with the hole summary
        for h in tr["holes"]:
            steps = [tr["positions"][p]["step"] for p in range(h["start"], h["start"] + h["length"])]
            assert (h["first_step"], h["last_step"]) == (min(steps), max(steps))
        # the final frame's tokens spell the result text
        text = b"".join(bytes.fromhex(p["bytes"]) for p in tr["positions"]).decode()
        assert text == r.text == tr["text"]


def test_display_text_shows_whitespace(results):
    tr = trace_frames(results[0])
    shown = [p["text"] for p in tr["positions"]]
    assert any("␣" in t for t in shown)                      # '": "' style scaffold has a space
    assert not any(c in t for t in shown for c in " \n\t")
    assert all(p["text"] == "∅" for p in tr["positions"] if p["pad"])


def test_trace_frames_needs_history(vocab):
    tpl = compile_regex("[0-9]{3}", vocab)
    r = denoise(RandomDenoiser(vocab), [tpl], None, SamplerOptions(steps=2))[0]
    with pytest.raises(ValueError, match="record_history"):
        trace_frames(r)


def _payload(page: str) -> list:
    m = re.search(r'<script type="application/json" id="trace-data">(.*?)</script>', page, re.S)
    return json.loads(m.group(1))


def test_html_is_self_contained_and_replays_every_frame(results, tmp_path):
    path = write_trace_html(results, tmp_path / "sub" / "t.html", title="my run")
    page = path.read_text(encoding="utf-8")
    assert path.exists() and page.startswith("<!doctype html>")
    for bad in ("http://", "https://", "<script src", "<link", "@import", "url("):
        assert bad not in page
    assert "<title>my run</title>" in page and "<h1>my run</h1>" in page
    assert page.count('<section class="rec"') == len(results)
    data = _payload(page)
    assert len(data) == len(results)
    for r, tr in zip(results, data):
        assert len(tr["frames"]) == len(r.history)
        assert tr == json.loads(json.dumps(trace_frames(r)))
        assert f'max="{len(r.history) - 1}"' in page            # the slider spans every frame
        assert html.escape(r.text) in page                       # final text shown
    sections = page.split('<section class="rec"')[1:]
    for r, sec in zip(results, sections):
        assert sec.count("data-s=") == r.template.num_hole_positions
        for h in r.template.holes:
            if h.spec.name:
                assert html.escape(h.spec.name) in sec
    for word in ("play", "prev", "next", 'type="range"', "frame="):
        assert word in page


def test_max_records(vocab, tmp_path):
    tpl = compile_regex("[0-9]{2}", vocab)
    rs = run(vocab, [tpl, tpl, tpl], steps=2)
    page = write_trace_html(rs, tmp_path / "t.html", max_records=2).read_text(encoding="utf-8")
    assert page.count('<section class="rec"') == 2 and len(_payload(page)) == 2
    assert "first 2 of 3" in page
    single = write_trace_html(rs[0], tmp_path / "one.html").read_text(encoding="utf-8")
    assert single.count('<section class="rec"') == 1


def test_html_escapes_markup_in_tokens(vocab, tmp_path):
    r = run(vocab, [compile_regex("<[a&]&>\"'", vocab)], steps=3)[0]   # an & whatever is drawn
    assert r.text.startswith("<") and "&" in r.text
    page = write_trace_html([r], tmp_path / "t.html", title='<b>"x" & y</b>').read_text("utf-8")
    assert "<b>" not in page and "&lt;b&gt;&quot;x&quot; &amp; y&lt;/b&gt;" in page
    assert r.text not in page and html.escape(r.text) in page
    assert page.count("</script>") == 2 and page.count("<script") == 2
    canvas = page.split('<div class="canvas">')[1].split("</div>")[0]
    text_only = re.sub(r'<span class="[^"<>]*"(?: [a-z-]+="[^"<>]*")*>|</span>', "", canvas)
    assert "<" not in text_only and ">" not in text_only
    assert not re.search(r"&(?!(amp|lt|gt|quot|#x27);)", text_only)
    assert "&lt;" in text_only and "&amp;" in text_only
    assert _payload(page)[0]["text"] == r.text                  # JSON escaping round-trips


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def test_terminal_view_plain_stream(results):
    r = results[0]
    out = io.StringIO()
    view = TerminalView(r.template, stream=out)
    for k, (nfe, ids) in enumerate(r.history):
        view(k, nfe, [ids])                                      # usable as the on_step callback
    view.close()
    lines = out.getvalue().splitlines()
    n = r.template.num_hole_positions
    assert len(lines) == len(r.history)
    assert lines[0] == f"step 0 nfe 0: {n}/{n} masked"
    assert lines[-1] == f"step {len(r.history) - 1} nfe {r.nfe}: 0/{n} masked"
    assert "\x1b" not in out.getvalue()


def test_terminal_view_tty_redraws_in_place(results):
    out = FakeTTY()
    view = TerminalView([r.template for r in results], stream=out)
    frames = len(results[0].history)
    for k in range(frames):
        view.update(k, results[0].history[k][0], [r.history[k][1] for r in results])
    view.close()
    text = out.getvalue()
    assert "\x1b[" in text and "\x1b[J" in text and "\x1b[38;5;" in text
    assert re.search(r"\x1b\[\d+F", text)                       # moved back up to redraw
    assert text.endswith("\x1b[?25h")                           # cursor restored
    drawings = text.split("\x1b[J")
    assert len(drawings) == frames + 1
    assert "░" in drawings[1] and "░" not in drawings[-1]       # all masked -> none masked
    assert '"name"' in re.sub(r"\x1b\[[0-9;]*m", "", drawings[-1])


def test_terminal_view_rejects_wrong_shapes(results):
    view = TerminalView(results[0].template, stream=io.StringIO())
    with pytest.raises(ValueError):
        view.update(0, 0, [results[0].history[0][1], results[0].history[0][1]])
    with pytest.raises(ValueError):
        view.update(0, 0, [np.zeros(3, dtype=np.int64)])


def test_terminal_view_as_denoise_hook(vocab):
    if "on_step" not in inspect.signature(denoise).parameters:
        pytest.skip("denoise has no on_step hook yet")
    tpl = compile_regex("[0-9]{4}", vocab)
    out = io.StringIO()
    r = denoise(RandomDenoiser(vocab), [tpl], None, SamplerOptions(steps=2),
                on_step=TerminalView(tpl, stream=out))[0]
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("step 0 nfe 0:")
    assert lines[-1] == f"step {len(lines) - 1} nfe {r.nfe}: 0/{tpl.num_hole_positions} masked"
