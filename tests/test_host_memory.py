"""keep_freed_memory: large freed blocks are reused without page faults, and the results are unchanged."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

from pixelrl.host_memory import keep_freed_memory

# A child process allocates, touches and frees a 64 MiB torch tensor 20 times and reports its minor
# page faults for the first allocation (which faults either way) and over the other 19.
_CHILD = """
import json, resource, sys
import torch
from pixelrl.host_memory import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "keep" else None
torch.manual_seed(0)
start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
x = torch.ones(16 * 1024 * 1024)
del x
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(19):
    x = torch.ones(16 * 1024 * 1024)
    del x
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.LazyLinear(1))
opt = torch.optim.Adam(net.parameters())
for _ in range(3):
    opt.zero_grad(); net(torch.rand(64, 3, 32, 32)).square().mean().backward(); opt.step()
params = [p.sum().item() for p in net.parameters()]
print(json.dumps({"applied": applied, "first": before - start, "faults": faults, "params": params}))
"""

glibc = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="keep_freed_memory configures glibc"
)


def _child(mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@glibc
def test_freed_large_blocks_are_reused_without_page_faults_and_results_are_unchanged():
    system, kept = _child("system"), _child("keep")
    assert kept["applied"] is True
    # glibc's default maps and unmaps every 64 MiB block: each new one faults its pages in as the
    # first did (small or transparent huge pages alike). Kept, the block is reused: a few
    # allocations' worth of faults at most, while the heap settles around torch's aligned blocks.
    assert system["first"] >= 32
    assert system["faults"] >= 15 * system["first"]
    assert kept["faults"] <= 3 * kept["first"]
    assert kept["faults"] * 5 < system["faults"]
    assert kept["params"] == system["params"]  # bit for bit: only where the memory comes from changed


@pytest.mark.parametrize(("system", "libc"), [("Darwin", ("", "")), ("Linux", ("musl", "1.2"))])
def test_without_glibc_nothing_is_changed(monkeypatch, system, libc):
    monkeypatch.setattr(platform, "system", lambda: system)
    monkeypatch.setattr(platform, "libc_ver", lambda: libc)
    assert keep_freed_memory() is False
