"""Where the units of work run: in this process, on a Ray cluster, or as a Slurm job array.

The trace and attack stages cut their work into *units* and say how to run one
(:func:`etio.traces.stage.trace_units` / :func:`~etio.traces.stage.run_trace_unit`: a group of
configurations trained together; :func:`etio.attacks.stage.attack_units` /
:func:`~etio.attacks.stage.run_attack_unit`: one configuration's attacks);
:mod:`etio.pipeline.stages` wraps them as :class:`Unit` objects and hands them to
:func:`run_units`. An executor only runs units; every unit writes into the trace store through
the store's API and skips what is stored, so any mix of executors, retries and reruns
converges to the same store and the same ``traces.csv``.

Executors (``--executor``, or ``kind`` in the config's ``[executor]`` table), one module each:

- ``local`` (:mod:`.local`, the default): the training units one after another in this process;
  the attack units too, or, from :data:`POOL_MIN_UNITS` units up, in ``processes`` worker
  processes of this machine (default: one per core on the CPU; attack models are tiny, so each
  worker runs one torch thread, as the in-process run does, and the results are the same bytes).
  The first failure stops the run.
- ``ray`` (:mod:`.ray`): one Ray task per unit with the unit's CPU/GPU/memory request, retried
  ``retries`` times (a killed worker as well as an exception); ``ray_address`` joins a running
  cluster, otherwise a local Ray is started for the run and stopped after it.
- ``slurm`` (:mod:`.slurm`): the units as a Slurm job array through submitit (partition, time,
  GPUs per job, array parallelism), failed units resubmitted ``retries`` times.
  ``slurm_cluster = "local"`` runs the same array with submitit's local executor.

With ray and slurm a failed unit does not stop the others: the run finishes every unit it
can, rewrites ``traces.csv`` from the store, reports each failed unit with its
configurations and exits non-zero. Each unit's state (queued, running, done, failed; host,
attempt, error) is kept in ``<store>/units/<stage>/<unit>.json`` (:mod:`.ledger`), which
``etio status`` reads (:mod:`.status`). The settings are :mod:`.settings`, the requests
:mod:`.resources`.
"""

from etio.pipeline.executors.settings import EXECUTORS, SLURM_CLUSTERS, ExecutorSettings, parse_executor_settings
from etio.pipeline.executors.resources import Resources, largest, unit_resources
from etio.pipeline.executors.units import Echo, Outcome, Unit, UnitsFailed
from etio.pipeline.executors.ledger import execute_unit, ledger_dir, read_entry
from etio.pipeline.executors.local import POOL_MIN_UNITS, attack_processes, local_processes
from etio.pipeline.executors.run import raise_for_failures, run_units
from etio.pipeline.executors.status import StageStatus, store_status

__all__ = ["EXECUTORS", "SLURM_CLUSTERS", "ExecutorSettings", "parse_executor_settings", "Resources", "largest",
           "unit_resources", "Echo", "Outcome", "Unit", "UnitsFailed", "execute_unit", "ledger_dir", "read_entry",
           "POOL_MIN_UNITS", "attack_processes", "local_processes", "raise_for_failures", "run_units",
           "StageStatus", "store_status"]
