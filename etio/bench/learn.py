"""``etio bench learn``: the structure-learning backend's hc and boot.strength on a fixed case, and
the learning stage's speedup with several workers."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from etio.causal import rbridge
from etio.causal.learning import learn_all
from etio.core.paths import DATA_DIR
from etio.core.provenance import available_cores


BENCH_DATA = DATA_DIR / "bench"


def backend_times(repetitions: int = 30, replicates: int = 200) -> dict:
    """Time the backend's ``hc`` and ``boot.strength`` on the 14-node benchmark case.

    The case is the ``etio14`` fixture (280 rows of an attack graph's 14 nodes with the
    authors' kind of whitelist/blacklist), shipped in ``etio/data/bench``.
    """
    backend = rbridge.backend()
    timer = rbridge.function(r"""
function(dir, repetitions, R) {
  data <- read.csv(file.path(dir, "etio14-data.csv"))
  wl <- as.matrix(read.csv(file.path(dir, "etio14-whitelist.csv"), stringsAsFactors = FALSE))
  bl <- as.matrix(read.csv(file.path(dir, "etio14-blacklist.csv"), stringsAsFactors = FALSE))
  hc(data, whitelist = wl, blacklist = bl)  # warm-up (byte compilation)
  hc_ms <- vapply(seq_len(repetitions), function(i)
    1000 * system.time(hc(data, whitelist = wl, blacklist = bl))[["elapsed"]], 0)
  set.seed(7)
  boot_s <- system.time(etio_boot_strength(data, R = R, algorithm = "hc",
                                           algorithm.args = list(whitelist = wl, blacklist = bl)))[["elapsed"]]
  c(hc_median_ms = median(hc_ms), boot_s = boot_s)
}
""")
    values = rbridge.call(timer, str(BENCH_DATA), int(repetitions), int(replicates))
    return {"hc_median_ms": float(values["hc_median_ms"]), "boot_strength_s": float(values["boot_s"]),
            "backend": backend,
            "repetitions": repetitions, "replicates": replicates}


def worker_speedup(traces_path: Path, workers: int, weight_decay: float = 0.0005, method: str = "boot",
                      replicates: int = 200, runs: int = 20, seed: int = 1) -> dict:
    """Seconds of :func:`learn_all` with one worker and with ``workers``, and whether the files are the same bytes.

    Worker start-up (a Python and an R per worker) is inside the parallel time. Besides wall
    time, the CPU time of each run is measured (this process and its finished workers): on a
    machine whose cores are busy with other work the wall ratio says little, while
    ``cpu_bound_speedup`` (serial CPU time over this process's plus one worker's share of the
    workers' CPU time) is what free cores give.
    """
    import resource
    import tempfile
    import time

    from etio.core.schema import read_traces

    def cpu(who) -> float:
        usage = resource.getrusage(who)
        return usage.ru_utime + usage.ru_stime

    traces = read_traces(traces_path)
    seconds, files, own, children = {}, {}, {}, {}
    with tempfile.TemporaryDirectory(prefix="etio-bench-learn-") as tmp:
        for n in (1, workers):
            out = Path(tmp) / f"workers-{n}"
            start, own_start, children_start = time.perf_counter(), cpu(resource.RUSAGE_SELF), cpu(resource.RUSAGE_CHILDREN)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                graphs = learn_all(traces, out, weight_decay, method=method, seed=seed, replicates=replicates, runs=runs, workers=n)
            seconds[n] = time.perf_counter() - start
            own[n] = cpu(resource.RUSAGE_SELF) - own_start
            children[n] = cpu(resource.RUSAGE_CHILDREN) - children_start
            files[n] = {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.name != "provenance.json"}
    serial_cpu = own[1] + children[1]
    return {"graphs": len(graphs), "workers": workers, "serial_s": seconds[1], "parallel_s": seconds[workers],
            "speedup": seconds[1] / seconds[workers], "identical": files[1] == files[workers],
            "serial_cpu_s": serial_cpu, "parallel_cpu_s": own[workers] + children[workers],
            "cpu_bound_speedup": serial_cpu / (own[workers] + children[workers] / workers),
            "cores": available_cores(), "replicates": replicates, "runs": runs, "method": method,
            "load_average": os.getloadavg()[0]}
