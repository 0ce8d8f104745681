"""Shared helpers for the benchmark scripts: the static modgate, and a small runner
(bench/runner) that spawns commands many times, interleaved, and reports the median
wall time and each child's own peak RSS."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def modgate():
    """Builds and returns the static release binary (the one `make install` ships), or
    the binary MODGATE_BENCH_BIN names (to compare builds on the same machine)."""
    given = os.environ.get("MODGATE_BENCH_BIN")
    if given:
        return given
    return subprocess.check_output([f"{REPO}/scripts/build-static"], text=True).strip()


def runner():
    subprocess.check_call(["cargo", "build", "--release", "-q", "-p", "modgate-bench-runner"], cwd=REPO)
    return f"{REPO}/target/release/modgate-bench-runner"


def compare(cases, runs, warmup=10, stdin=None):
    """cases: list of (label, argv). Returns {label: (median_s, max_rss_kib)}."""
    cmd = [runner(), str(runs), str(warmup)] + ([stdin] if stdin else [])
    for _, argv in cases:
        cmd += ["--"] + argv
    out = subprocess.check_output(cmd, text=True).splitlines()
    result = {}
    for (label, argv), line in zip(cases, out):
        median, _p10, _p90, rss, failures = (int(x) for x in line.split())
        if failures:
            raise SystemExit(f"{label}: {failures} of {runs} runs failed: {' '.join(argv)}")
        result[label] = (median / 1e6, rss)
    return result


def ms(s):
    return f"{s * 1000:.3f} ms"


def mib(kib):
    return f"{kib / 1024:.2f} MiB"


class Targets:
    """The targets a benchmark checks: each `check` says whether it was met; `done`
    names the missed ones and exits 1 if there are any."""

    def __init__(self):
        self.missed = []

    def check(self, what, ok):
        if not ok:
            self.missed.append(what)
        return "" if ok else "  MISSED"

    def done(self):
        if self.missed:
            print(f"targets missed: {', '.join(self.missed)}")
        else:
            print("all targets met")
        sys.exit(1 if self.missed else 0)
