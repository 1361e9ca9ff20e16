"""Scoring a spiking model, end to end (docs/user-guide.md, "Scoring a spiking model").

Trains a tiny snnTorch network on scikit-learn's digits as rate-coded spikes, scores it with
snnTorch itself, exports it to NIR and writes the data files neurocc reads:

    python examples/snntorch_digits.py            # writes digits_snn.nir, cal.npz, test.npz
    neurocc compile digits_snn.nir --target loihi2 -o out/snn --calibration cal.npz
    neurocc evaluate out/snn --data test.npz                      # spike-count readout
    neurocc evaluate out/snn --data test.npz --backend reference  # the float model: as snnTorch
"""
from __future__ import annotations

import numpy as np
import snntorch as snn
import torch
from sklearn.datasets import load_digits
from torch import nn

import neurocc

STEPS = 20


class Net(nn.Module):
    """Linear → Leaky → Linear → Leaky; ``forward`` is one time step with explicit membranes."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(64, 64)
        self.lif1 = snn.Leaky(beta=0.9, reset_mechanism="zero")
        self.fc2 = nn.Linear(64, 10)
        self.lif2 = snn.Leaky(beta=0.9, reset_mechanism="zero")

    def forward(self, x, mem1=None, mem2=None):  # type: ignore[no-untyped-def]
        spk1, mem1 = self.lif1(self.fc1(x), mem1)
        spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
        return spk2, mem1, mem2


def spike_counts(net: Net, x: torch.Tensor) -> torch.Tensor:
    """Output spike counts (batch, 10) of a batch-first spike tensor x (batch, steps, 64)."""
    mem1, mem2 = torch.zeros(len(x), 64), torch.zeros(len(x), 10)
    count = 0
    for t in range(x.shape[1]):
        spk, mem1, mem2 = net(x[:, t], mem1, mem2)
        count = count + spk
    return count


def main() -> None:
    digits = load_digits()
    rng = np.random.default_rng(0)
    # rate coding: pixel / 16 is the spike probability per step; x is (samples, steps, 64)
    x = (rng.random((len(digits.data), STEPS, 64)) < digits.data[:, None, :] / 16).astype(np.float32)
    y = digits.target
    train, test = slice(0, 1400), slice(1400, None)
    torch.manual_seed(0)
    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    xt, yt = torch.from_numpy(x[train]), torch.from_numpy(y[train])
    for _ in range(30):
        for i in range(0, len(xt), 100):
            loss = nn.functional.cross_entropy(spike_counts(net, xt[i:i + 100]), yt[i:i + 100])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        pred = spike_counts(net, torch.from_numpy(x[test])).argmax(1).numpy()
    print(f"snnTorch accuracy on the test spikes: {np.mean(pred == y[test]) * 100:.2f}%")
    neurocc.export_nir(net, "digits_snn.nir", input_shape=(64,))
    np.savez("test.npz", x=x[test], y=y[test])                             # (samples, steps, 64)
    np.savez("cal.npz", x=x[train][:200].transpose(1, 0, 2), y=y[train][:200])  # time-major
    print("wrote digits_snn.nir, test.npz (x: samples, steps, 64), cal.npz")


if __name__ == "__main__":
    main()
