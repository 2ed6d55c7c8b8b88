"""Print the README's per-release support table from the release matrix's rows
(``make test-matrix`` writes one JSON per release into .venv-matrix/summary).

usage: python .ci/matrix_table.py [SUMMARY_DIR]
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# First release with each drafter option (the probe module imports no vLLM).
from vllm_peagle.features import EAGLE3_DRAFTER_OPTIONS as OPTIONS  # noqa: E402


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".")[:3] if p.isdigit())


def row(r: dict) -> str:
    auto, f = r["auto"], r["features"]
    installed = [k for k, v in auto.items() if v == "installed"]
    native = [k for k, v in auto.items() if v == "native"]
    # A probe's None is "unknown": pre-flight refuses nothing on it.
    refuses = [f"`{o}: true` (needs {rel})" for o, rel in OPTIONS.items()
               if f["drafter_options"] is not None and o not in f["drafter_options"]]
    if f["drafter_sizes_aux_inputs"] is False:
        refuses.append("aux count != 3 or `target_hidden_size` != `hidden_size` (needs 0.22.0)")
    if f["v2_runner_excludes_parallel_drafting"] is False:
        refuses.append("`VLLM_USE_V2_MODEL_RUNNER=1`")
    qwen3 = "vLLM's" if f["qwen3_eagle3"] and auto.get("registry") == "native" else "this package's"
    off = "rejects the checkpoint" if r["off_error"] else "runs it natively"
    return (f"| {r['vllm']} | {', '.join(installed) or '-'} | {', '.join(native) or '-'} | "
            f"{qwen3} | {'; '.join(refuses) or '-'} | {off} |")


def zoo_table(rows: list[dict]) -> list[str]:
    """The checkpoint zoo (dev/zoo.py) in ``auto``, variant x release: runs, or
    pre-flight's stop line."""
    rows = sorted(rows, key=lambda r: _key(r["vllm"]))
    variants = list(dict.fromkeys(v for r in rows for v in r["zoo"]))
    out = ["| zoo checkpoint | " + " | ".join(r["vllm"] for r in rows) + " |",
           "|---|" + "---|" * len(rows)]
    # Each distinct stop line once, below the table.
    notes: dict[str, int] = {}

    def cell(text: str) -> str:
        if text == "runs" or text == "-":
            return text
        return f"stops [{notes.setdefault(text, len(notes) + 1)}]"

    for v in variants:
        out.append(f"| {v} | " + " | ".join(cell(r["zoo"].get(v, "-")) for r in rows) + " |")
    out += [""] + [f"[{n}] {text}" for text, n in notes.items()]
    return out


def zoo_engine_table(r: dict) -> list[str]:
    """The zoo's engines on one release: off, auto and force."""
    out = [f"Zoo engines, vLLM {r['vllm']} (CPU, float32, greedy):", "",
           "| zoo checkpoint | off | auto | force |", "|---|---|---|---|"]
    for v, row in r["zoo"].items():
        out.append(f"| {v} | {row['off']} | {row['auto']} | {row['force']} |")
    return out


def main() -> int:
    folder = sys.argv[1] if len(sys.argv) > 1 else ".venv-matrix/summary"
    kinds: dict[str, list[dict]] = {"release": [], "zoo": [], "zoo-engine": []}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json"):
            kind = ("zoo-engine" if name.startswith("zoo-engine-") else
                    "zoo" if name.startswith("zoo-") else "release")
            with open(os.path.join(folder, name)) as f:
                kinds[kind].append(json.load(f))
    if kinds["release"]:
        print("| vLLM | `auto` installs | kept native | Qwen3 drafter | pre-flight refuses "
              "| plugin `off` |")
        print("|---|---|---|---|---|---|")
        for r in sorted(kinds["release"], key=lambda r: _key(r["vllm"])):
            print(row(r))
    if kinds["zoo"]:
        print("\nThe checkpoint zoo in `auto`, config level (runs, or pre-flight's stop):\n")
        print("\n".join(zoo_table(kinds["zoo"])))
    for r in kinds["zoo-engine"]:
        print("\n" + "\n".join(zoo_engine_table(r)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
