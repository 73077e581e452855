"""Trains the networks a run needs before its cases start, several at once.

A cold study spends most of its time training. Here every network that is not in the
cache yet trains in a child process of its own, up to ``jobs`` at a time, longest first;
each child gets an equal share of the cores as TensorFlow intra-op threads, so two small
networks on two cores train in about the time of one. Children are spawned (TensorFlow
does not survive a fork) and end with this process. Their progress lines come back over
a queue, so one process writes to the terminal. A network whose child fails or dies is
reported and left untrained: the cases that need it train it themselves, and fail with
the error if it recurs.
"""

from __future__ import annotations

import os
import queue
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from tinyhil.models import QUIET_TENSORFLOW
from tinyhil.models.model_files import is_flatbuffer_network, is_keras_file_network
from tinyhil.models.networks import get_network, load_builders
from tinyhil.models.pipeline import Study, StudyConfig
from tinyhil.models.training import is_trained

_QUEUE = None  # the child's end of the progress queue
_LOG: Path | None = None  # the child's log (its stdout and stderr)
_STUDY: Study | None = None  # the child's study, kept from network to network


@dataclass
class TrainingResult:
    """How one network's training ended.

    Attributes:
        network: Network id.
        error: Why it did not train (None: trained).
        accuracy: Base (Keras) test accuracy.
        epochs: Epochs run.
        kept_epoch: The epoch whose weights were kept.
        seconds: Wall time in the child, from its start to the cache write.
    """

    network: str
    error: str | None = None
    accuracy: float | None = None
    epochs: int | None = None
    kept_epoch: int | None = None
    seconds: float | None = None


def untrained(study: Study, networks: Iterable[str]) -> list[str]:
    """The networks among ``networks`` that a run would have to train (not in the cache),
    each once, in the given order; user model files are never trained."""
    c, out = study.config, []
    for net in dict.fromkeys(networks):
        spec = get_network(net)
        if is_flatbuffer_network(spec) or is_keras_file_network(spec):
            continue
        if not is_trained(spec, study.dataset, c.profile, c.seed, c.cache_dir):
            out.append(net)
    return out


def _child_init(progress_queue, threads: int, parent: int, log_dir: str, quiet_tf: bool = True) -> None:
    from tinyhil.models.cstderr import quiet_tensorflow_start
    from tinyhil.models.lifeline import die_with_parent

    if quiet_tf:  # as in the parent: its TF_CPP_MIN_LOG_LEVEL, inherited, reads as the user's here
        quiet_tensorflow_start()

    die_with_parent(parent)
    # TensorFlow's start-up chatter (absl, CUDA probes) would break the terminal's lines:
    # this child's stdout and stderr go to a log of its own, named in any error.
    global _LOG
    _LOG = Path(log_dir) / f"train-{os.getpid()}.log"
    log = open(_LOG, "ab", buffering=0)  # noqa: SIM115 - lives as long as the process
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    global _QUEUE
    _QUEUE = progress_queue
    import tensorflow as tf  # after models/__init__ (imported with this module): tf_keras is selected

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def _train_child(
    config: StudyConfig, network: str, techniques: tuple[str, ...] = (), builders: str | None = None
) -> TrainingResult:
    t0 = time.monotonic()
    if builders:  # a spawned child starts with tinyhil's own networks only
        load_builders(Path(builders))

    def progress(line: str) -> None:
        _QUEUE.put((network, line))

    print(f"--- training {network}", flush=True)
    head = f"[train {network} {config.profile}]"
    global _STUDY
    if _STUDY is None or _STUDY.config != config:  # one per child: the dataset loads once
        progress(f"{head} loading the dataset")  # seconds of silence otherwise, before the first epoch
        _STUDY = Study(config)
        _STUDY.dataset  # noqa: B018 - loaded here, under its progress line
    study = _STUDY
    study.progress = progress
    progress(f"{head} building and training the network")
    try:
        tm = study.trained(network)
    except Exception as e:  # noqa: BLE001 - reported to the parent; the cases retry it
        traceback.print_exc()
        last = traceback.format_exception_only(type(e), e)[-1].strip()
        return TrainingResult(network, f"{last} (log: {_LOG})")
    m = tm.meta
    result = TrainingResult(
        network, None, float(m["keras_accuracy"]), int(m["epochs_run"]), int(m["kept_epoch"]), time.monotonic() - t0
    )
    if techniques:
        # The conversions of this network, while the model is in memory: they run on every
        # core too instead of one after another in the cases. A failure is a verdict,
        # cached for its case; anything else is the case's to report.
        progress(f"[train {network} {config.profile}] converting {len(techniques)} technique(s)")
        for technique in techniques:
            try:
                study.artifacts(network, technique)
            except Exception:  # noqa: BLE001 - the case meets it again and reports it
                traceback.print_exc()
        result.seconds = time.monotonic() - t0
    return result


def _builders_of(network: str) -> str | None:
    """The ``--networks-from`` file that registered ``network`` (None: one of tinyhil's own)."""
    return get_network(network).family_params.get("builders")


def _cost(network: str) -> tuple[int, int]:
    """Sort key, most expensive first: CNN-LSTMs train longest, then the larger networks."""
    spec = get_network(network)
    return (0 if "LSTM" in spec.family else 1, -spec.size_rank)


def default_jobs() -> int:
    """One training process per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def train_networks(
    config: StudyConfig,
    networks: list[str],
    jobs: int,
    on_line: Callable[[str, str], None],
    on_done: Callable[[TrainingResult], None],
    techniques: dict[str, list[str]] | None = None,
) -> list[TrainingResult]:
    """Trains ``networks`` (into ``config.cache_dir``) in up to ``jobs`` child processes.

    Args:
        config: The study's settings; the children build their own :class:`Study` from it.
        networks: Network ids to train (see :func:`untrained`).
        jobs: Most children at once.
        on_line: Receives ``(network, line)`` for every progress line of a child.
        on_done: Receives each network's :class:`TrainingResult` as it ends.
        techniques: Per network, techniques to convert in the same child after training
            (into the conversion cache); their seconds count in the network's.

    Returns:
        One result per network, in the order they ended.
    """
    if not networks:
        return []
    order = sorted(networks, key=_cost)
    workers = max(1, min(jobs, len(order)))
    threads = max(1, default_jobs() // workers)
    ctx = get_context("spawn")
    progress_queue = ctx.Queue()
    (Path(config.cache_dir) / "logs").mkdir(parents=True, exist_ok=True)
    log_dir = Path(tempfile.mkdtemp(prefix=time.strftime("train-%Y%m%d-%H%M%S-"), dir=Path(config.cache_dir) / "logs"))
    results: list[TrainingResult] = []

    def drain(timeout: float) -> None:
        try:
            net, line = progress_queue.get(timeout=timeout)
            on_line(net, line)
            while True:
                net, line = progress_queue.get_nowait()
                on_line(net, line)
        except queue.Empty:
            pass

    def finish(fut: Future, net: str) -> None:
        try:
            res = fut.result()
        except BrokenProcessPool:
            res = TrainingResult(net, f"its training process died (out of memory or a crash; logs in {log_dir})")
        except Exception as e:  # noqa: BLE001 - reported, and the cases retry it
            last = traceback.format_exception_only(type(e), e)[-1].strip()
            res = TrainingResult(net, last)
        results.append(res)
        on_done(res)

    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=ctx,
        initializer=_child_init,
        initargs=(progress_queue, threads, os.getpid(), str(log_dir), QUIET_TENSORFLOW),
    )
    try:
        todo = techniques or {}
        pending = {
            pool.submit(_train_child, config, net, tuple(todo.get(net, ())), _builders_of(net)): net for net in order
        }
        while pending:
            drain(0.2)
            done, _ = wait(pending, timeout=0, return_when=FIRST_COMPLETED)
            for fut in done:
                drain(0)  # the network's last lines come before its result
                finish(fut, pending.pop(fut))
    except BaseException:  # Ctrl-C or an error in a callback: stop the children now
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        progress_queue.close()
    if not any(r.error for r in results):
        shutil.rmtree(log_dir, ignore_errors=True)  # kept only when something went wrong
    return results
