"""``neurocc report DIR``: one static HTML file with its PNGs embedded, the validation and mapping
tables, rasters and rates from real recorded runs, written atomically; the CLI prints its path.
(Rendering in a browser is a manual check, see docs/reports.md: tests do not need Chromium.)"""
from __future__ import annotations

import base64
import itertools
import json
import os
import re
import struct

import numpy as np
import pytest

from neurocc import cli
from neurocc.backends.emulator import simulate
from neurocc.compiler.pipeline import compile_model
from neurocc.ir.artifact import load_artifact
from neurocc.ir.graph import Graph
from neurocc.ir.nodes import LIF, Input, Linear, Output
from neurocc.runtime import report as report_mod
from neurocc.runtime.report import format_report, write_report
from neurocc.runtime.report.data import collect, layer_spikes, spikes_from_state
from neurocc.runtime.run import run_artifact
from neurocc.runtime.validate import _result, random_inputs, write_json

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _lif_net(seed: int = 0, sizes=(20, 40, 10)) -> Graph:
    rng = np.random.default_rng(seed)
    nodes = [("in", Input(shape=(sizes[0],)))]
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        nodes += [(f"fc{i}", Linear(weight=rng.normal(0, 0.5, (b, a)))),
                  (f"lif{i}", LIF(tau=np.full(b, 2e-2), r=np.full(b, 20.0), v_leak=np.zeros(b),
                                  v_threshold=np.ones(b), v_reset=np.zeros(b)))]
    return Graph.chain(*nodes, ("out", Output(shape=(sizes[-1],))), name="lifnet").verify()


@pytest.fixture()
def art_dir(tmp_path):
    return compile_model(_lif_net(), "emulator", tmp_path / "lif", timesteps=30)


def _png_size(blob: bytes) -> tuple[int, int]:
    assert blob[:8] == PNG_MAGIC and blob[12:16] == b"IHDR"
    return struct.unpack(">II", blob[16:24])


def test_report_is_one_html_file_with_embedded_pngs_and_both_tables(art_dir):
    page = write_report(art_dir)
    assert page == art_dir / "report" / "report.html"
    names = sorted(p.name for p in page.parent.iterdir())
    assert names == ["rasters.png", "rates.png", "report.html", "summary.txt", "utilisation.png"]
    text = page.read_text()
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(embedded) == 3
    on_disk = {(page.parent / n).read_bytes() for n in ("rasters.png", "rates.png", "utilisation.png")}
    assert {base64.b64decode(b) for b in embedded} == on_disk          # the same pictures, embedded
    for blob in on_disk:
        w, h = _png_size(blob)
        assert w >= 400 and h >= 300
    # static and self-contained: no scripts, no external resources
    assert "<script" not in text and not re.search(r'(src|href)="(?!data:)', text)
    # the validation table: validation.json was missing, so the report validated and wrote it
    doc = json.loads((art_dir / "validation.json").read_text())
    (r,) = doc["results"]
    assert r["backend"] == "emulator" and f"{r['cosine']:.4f}" in text and "PASS" in text
    # the mapping table: every spiking layer with its neuron count
    for layer, n in (("lif0", 40), ("lif1", 10)):
        assert re.search(rf"<td class=\"l\">{layer}</td><td class=\"l\">QLIF</td><td class=\"\">{n}</td>", text)
    assert "neurons/core" in text and "fits" in text


def test_report_runs_and_rasters_come_from_real_runs(art_dir):
    art = load_artifact(art_dir)
    data = collect(art, sample=1)
    assert list(data.spikes) == ["reference", "emulator"] and not data.run_errors
    x = random_inputs(art, 4, seed=0)
    emu = run_artifact(art, "emulator", x, record=True)
    np.testing.assert_array_equal(data.spikes["emulator"]["lif1"][:, :, :], emu["lif1/out"])
    assert [layer.name for layer in data.layers] == ["lif0", "lif1"]
    assert [layer.lag for layer in data.layers] == [1, 2]   # one Loihi synapse step per layer
    assert all(z.sum() > 0 for z in data.spikes["reference"].values())


def test_spikes_derived_from_recorded_u_v_equal_the_emulators(art_dir):
    """Lava records only u and v: the report recomputes the spike test from them."""
    art = load_artifact(art_dir)
    run = run_artifact(art, "emulator", random_inputs(art, 2, seed=5), record=True)
    real = layer_spikes(art.graph, run)
    no_spikes = {k: v for k, v in run.items() if not k.endswith("/out")}
    derived = spikes_from_state(art.graph, no_spikes)
    assert set(derived) == {"lif0", "lif1"} and sum(int(z.sum()) for z in derived.values()) > 0
    for n in derived:
        np.testing.assert_array_equal(derived[n], real[n])


def test_failed_validation_shows_the_localised_divergence(art_dir):
    """A planted one-LSB change of lif1's dv, run as a 'loihi' backend: the page shows FAIL, the
    node and the class, and the summary line names them."""
    import dataclasses

    art = load_artifact(art_dir)
    x = random_inputs(art, 2, seed=1)
    emu = run_artifact(art, "emulator", x, record=True)
    n = art.graph.nodes["lif1"]
    bad_graph = art.graph.with_node("lif1", dataclasses.replace(n, dv=n.dv ^ 1))
    r = simulate(bad_graph, x, record=True)
    loihi_art = dataclasses.replace(art, manifest={**art.manifest, "target": {"name": "loihi2", "settings": {
        **art.manifest["target"]["settings"], "backend": "loihi", "validation": {"rule": "exact", "min_cosine": None}}}})
    res = _result(loihi_art, "loihi", {"emulator": emu, "loihi": {**r.outputs, **r.traces}})
    assert not res["passed"] and res["first_divergence"]["node"] == "lif1"
    doc = {"artifact": str(art_dir), "target": "emulator", "inputs": {"source": "test", "steps": 30, "batch": 2},
           "results": [res]}
    write_json(art_dir / "validation.json", doc)
    out = format_report(art_dir)
    text = (art_dir / "report" / "report.html").read_text()
    assert 'class="fail">FAIL' in text and f"lif1/{res['first_divergence']['var']} step" in text
    assert res["first_divergence_class"] in text and res["first_divergence_explanation"][:40] in text
    assert "loihi FAIL (first divergence lif1/" in out and res["first_divergence_class"] in out


def test_format_report_writes_once_then_reuses_until_validation_changes(art_dir):
    out = format_report(art_dir)
    page = art_dir / "report" / "report.html"
    first, summary = out.splitlines()
    assert first == f"report: {page}" and summary.startswith("target emulator; validation: emulator PASS")
    mtime = page.stat().st_mtime_ns
    assert format_report(art_dir) == out and page.stat().st_mtime_ns == mtime     # not rewritten
    v = art_dir / "validation.json"
    os.utime(v, ns=(mtime + 10**9, mtime + 10**9))
    format_report(art_dir)
    assert page.stat().st_mtime_ns != mtime                                         # stale: rewritten


def test_failed_write_keeps_the_previous_report(art_dir, monkeypatch):
    page = write_report(art_dir)
    before = {p.name: p.read_bytes() for p in page.parent.iterdir()}

    def boom(*a, **k):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr("neurocc.runtime.report.page.render", boom)
    with pytest.raises(OSError, match="simulated"):
        write_report(art_dir)
    assert {p.name: p.read_bytes() for p in page.parent.iterdir()} == before
    assert not [p for p in art_dir.iterdir() if p.name.startswith(".report")]     # no temporary left


def test_bad_sample_is_a_neurocc_error(art_dir):
    from neurocc.errors import InputError

    x = random_inputs(load_artifact(art_dir), 2, seed=0)
    with pytest.raises(InputError, match="sample 2 does not exist: the inputs hold 2 sample"):
        write_report(art_dir, sample=2, inputs=x)
    with pytest.raises(InputError, match="sample -1 does not exist"):
        write_report(art_dir, sample=-1)
    assert not (art_dir / "report").exists()


def test_cli_report_prints_the_path(art_dir, capsys):
    assert cli.main(["report", str(art_dir)]) == 0
    out = capsys.readouterr().out
    assert f"report: {art_dir / 'report' / 'report.html'}" in out and "validation:" in out
    assert report_mod.HTML == "report.html"
