"""Emit the standalone PyNN script for a SpiNNaker board (and NEST/brian2) into an artifact.

Files under ``DIR/pynn/``: ``pynn_network.py`` (a verbatim copy of :mod:`.pynn_template`, a real
module, not text spliced into a template), ``network.json`` + ``network.npz`` (the sidecar: the
populations, parameters and connection lists of :mod:`.network`) and ``README.txt`` with the
command lines. The user runs it on a board unchanged::

    python pynn/pynn_network.py --simulator spiNNaker --input X.npz --output Y.npz
"""
from __future__ import annotations

from pathlib import Path

from .network import Network, save_network
from .pynn_run import copy_template

SUBDIR = "pynn"
SCRIPT = "pynn_network.py"

README = """PyNN network emitted by neurocc for target '{target}' (graph '{name}').

  {script}     standalone script (numpy + PyNN; pyNN.spiNNaker needs sPyNNaker and a board)
  network.json / network.npz   populations, parameters (ms, mV, nF, nA), connection lists

Run:
  python {script} --simulator spiNNaker --input X.npz --output Y.npz
  python {script} --simulator nest      --input X.npz --output Y.npz   (float reference)
X.npz: one array of 0/1 spikes per graph input, (steps, batch, *shape). Y.npz: one array per
graph output on the SpiNNaker timeline (what `neurocc run --backend emulator` prints), plus
<population>/spikes for every layer. {n_pop} populations, {n_proj} projections, {n_syn} synapses.
"""


def emit_script(net: Network, directory: str | Path, target_name: str = "spinnaker") -> Path:
    """Write the script, its sidecar and a README into ``directory/pynn``; return that folder."""
    d = Path(directory) / SUBDIR
    d.mkdir(parents=True, exist_ok=True)
    save_network(net, d)
    copy_template(d, SCRIPT)
    (d / "README.txt").write_text(README.format(target=target_name, name=net.name, script=SCRIPT,
                                                n_pop=len(net.populations), n_proj=len(net.projections),
                                                n_syn=net.n_synapses))
    return d
