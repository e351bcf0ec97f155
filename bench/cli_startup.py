"""How long ``digest --version`` and ``digest --help`` take, beside Python itself.

Each command runs ``--repeat`` times in a fresh process, interleaved with the others so a
busy machine slows them alike; prints the fastest and the median of each (seconds).
``--baseline PATH`` adds another ``digest`` executable (an older checkout's) to the same run.

    .venv/bin/python bench/cli_startup.py --repeat 15 [--baseline ../main/.venv/bin/digest]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _time(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, capture_output=True, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--baseline", type=Path, help="another digest executable to compare")
    args = parser.parse_args()
    digest = str(Path(sys.executable).with_name("digest"))
    commands: dict[str, list[str]] = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import typer'": [sys.executable, "-c", "import typer"],
        "digest --version": [digest, "--version"],
        "digest --help": [digest, "--help"],
        "digest subscribers add --help": [digest, "subscribers", "add", "--help"],
    }
    if args.baseline:
        commands["baseline --version"] = [str(args.baseline), "--version"]
        commands["baseline --help"] = [str(args.baseline), "--help"]
    timings: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.repeat):
        for name, command in commands.items():
            timings[name].append(_time(command))
    width = max(map(len, commands))
    print(f"{'command':<{width}}  fastest  median")
    for name, values in timings.items():
        print(f"{name:<{width}}  {min(values):7.3f}  {statistics.median(values):6.3f}")


if __name__ == "__main__":
    main()
