"""Where a training run's progress goes: a callback or a progress bar, and training curves.

A run reports to the person watching (a tqdm bar and printed lines for ``langmix train``, or a
:data:`ProgressCallback` when a study draws one display for all its cells) and, with
``--report-to``, to an experiment tracker through accelerate (``accelerator.log``): TensorBoard
event files in ``OUTPUT/tensorboard``, a Weights & Biases run named ``--run-name``, or an mlflow
run (in ``$MLFLOW_TRACKING_URI``, else the SQLite store ``OUTPUT/mlflow.db``). The curves are
the training loss and learning rate of every step, the throughput of every logging step and the
validation loss of every validation; every setting is logged as a hyper-parameter. An mlflow
run's id is kept in ``OUTPUT/tracker.json``: a resumed run continues it, and
:func:`log_evaluation` adds evaluation metrics to it afterwards (a study's cells).

Example:
    >>> events = []
    >>> reporter = Reporter(TrainArguments(model="m", train=["mlqa-r"], output_dir="o",
    ...     max_steps=3), progress=events.append, total_steps=3)
    >>> reporter.emit("step", 1)
    >>> events[0].kind, events[0].step, events[0].total_steps
    ('step', 1, 3)
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langmix.outputs import write_json_atomic
from langmix.training.arguments import TrainArguments

#: Where a run records its tracker's run (``{"mlflow": {"run_id", "tracking_uri"}}``).
TRACKER_FILE = "tracker.json"
#: The mlflow store of a run when ``$MLFLOW_TRACKING_URI`` is not set.
MLFLOW_STORE = "mlflow.db"


@dataclass(frozen=True)
class TrainEvent:
    """What the trainer tells a progress callback (on the main process only).

    Attributes:
        kind: ``"step"`` after each optimizer step; ``"log"`` with the ``train_log.jsonl``
            record of a logging step; ``"validate"`` and ``"save"`` before a validation and
            before a checkpoint or model write; ``"message"`` with a line for the user.
        step: Optimizer steps done.
        total_steps: Steps of the run.
        record: The log record (``"log"``).
        text: The message (``"message"``).
    """

    kind: str
    step: int
    total_steps: int
    record: dict[str, Any] | None = None
    text: str | None = None


ProgressCallback = Callable[[TrainEvent], None]


def make_tracker(args: TrainArguments) -> Any | None:
    """The accelerate tracker ``args.report_to`` names, not started; ``None`` for ``"none"``."""
    out = Path(args.output_dir)
    if args.report_to == "tensorboard":
        from accelerate.tracking import TensorBoardTracker

        # The run's own directory, no run-name level below it: `tensorboard --logdir` over
        # several runs (a study's cells/) names each run by its path.
        return TensorBoardTracker("", str(out / "tensorboard"))
    if args.report_to == "wandb":
        from accelerate.tracking import WandBTracker

        return WandBTracker("langmix", name=args.run_name or out.resolve().name, dir=str(out))
    if args.report_to == "mlflow":
        from accelerate.tracking import MLflowTracker

        recorded = _recorded_run(out) if args.resume else None
        return MLflowTracker(
            "langmix",
            run_id=recorded.get("run_id") if recorded else None,
            run_name=args.run_name or out.resolve().name,
        )
    return None


def mlflow_tracking_uri(out: Path) -> str:
    """``$MLFLOW_TRACKING_URI``, else the SQLite store beside the run (``OUTPUT/mlflow.db``)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or _store_uri(out)


def _store_uri(directory: Path) -> str:
    """The SQLite mlflow store ``directory/mlflow.db``, as a tracking URI."""
    return f"sqlite:///{(directory / MLFLOW_STORE).resolve()}"


@contextlib.contextmanager
def mlflow_store(directory: Path, experiment: str) -> Iterator[None]:
    """Send the mlflow runs started inside to one store and experiment (a study's cells).

    ``$MLFLOW_TRACKING_URI`` and ``$MLFLOW_EXPERIMENT_NAME`` set by the user win; those set
    here are removed on the way out.
    """
    added = {
        key: value
        for key, value in (
            ("MLFLOW_TRACKING_URI", _store_uri(directory)),
            ("MLFLOW_EXPERIMENT_NAME", experiment),
        )
        if key not in os.environ
    }
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def _recorded_run(out: Path) -> dict[str, str] | None:
    path = out / TRACKER_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8")).get("mlflow")


def log_evaluation(run_dir: Path, name: str, metrics: Mapping[str, float], step: int) -> bool:
    """Add one evaluation's metrics (``{name}/{metric}``) to the run's mlflow run, if it has one.

    Through the client, not the fluent API: the run is finished, and no global active run is
    opened or left behind.

    Returns:
        Whether a tracker run took them (only mlflow runs record one).
    """
    recorded = _recorded_run(run_dir)
    if recorded is None:
        return False
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    stamp = int(time.time() * 1000)
    values = [
        Metric(_metric_key(f"{name}/{key}"), float(value), stamp, step)
        for key, value in metrics.items()
        if value is not None
    ]
    MlflowClient(recorded["tracking_uri"]).log_batch(recorded["run_id"], metrics=values)
    return True


def _metric_key(key: str) -> str:
    """mlflow takes letters, digits and ``_-. :/`` in names: ``xquad-r[:1]/ndcg@10`` ->
    ``xquad-r_:1_/ndcg_10``."""
    return re.sub(r"[^\w\-. :/]", "_", key)


class Reporter:
    """A run's progress reports: events to a callback, or a bar and printed lines; curves.

    Args:
        args: The run's settings (``report_to``, ``run_name``, ``sampling`` for the bar).
        progress: The callback that replaces the bar and the printed lines.
        show_progress: Draw a tqdm bar when there is no callback.
        total_steps: Steps of the run.
        is_main: Whether this is the main process (the only one that reports).
    """

    def __init__(
        self,
        args: TrainArguments,
        *,
        progress: ProgressCallback | None = None,
        show_progress: bool = True,
        total_steps: int = 0,
        is_main: bool = True,
    ) -> None:
        self.args = args
        self.progress = progress
        self.show_progress = show_progress
        self.total_steps = total_steps
        self.is_main = is_main
        self.tracker = make_tracker(args)
        self._accelerator: Any | None = None

    def emit(self, kind: str, step: int, **details: Any) -> None:
        """Tell the callback (if any) about ``kind`` at ``step``."""
        if self.progress is not None and self.is_main:
            self.progress(TrainEvent(kind, step, self.total_steps, **details))

    def say(self, text: str, step: int) -> None:
        """A line for the user: to the callback, else printed (main process only)."""
        if not self.is_main:
            return
        if self.progress is not None:
            self.emit("message", step, text=text)
        else:
            print(text)

    def bar(self, initial: int) -> Any:
        """The run's tqdm bar; a disabled one under a callback or without ``show_progress``."""
        from tqdm.auto import tqdm

        return tqdm(
            total=self.total_steps,
            initial=initial,
            desc=f"train {self.args.sampling}",
            disable=not (self.show_progress and self.progress is None and self.is_main),
            unit="step",
        )

    def start(self, accelerator: Any, resumed_step: int) -> None:
        """Start the tracker (after ``accelerator`` was built with ``log_with=[tracker]``)."""
        if self.tracker is None:
            return
        self._accelerator = accelerator
        if resumed_step and self.args.report_to == "tensorboard":
            # Hide what an interrupted run logged after its checkpoint; this run logs it again.
            self.tracker.init_kwargs["purge_step"] = resumed_step + 1
        config = {
            key: ",".join(map(str, value)) if isinstance(value, list) else value
            for key, value in self.args.to_dict().items()
            if value is not None  # TensorBoard's hyperparameters take neither None nor lists
        }
        if self.args.report_to == "mlflow":
            import mlflow

            mlflow.set_tracking_uri(mlflow_tracking_uri(Path(self.args.output_dir)))
        accelerator.init_trackers("langmix", config=config)
        if self.args.report_to == "mlflow" and self.is_main:
            import mlflow

            record = {"run_id": self.tracker.active_run.info.run_id,
                      "tracking_uri": mlflow.get_tracking_uri()}  # fmt: skip
            write_json_atomic(Path(self.args.output_dir) / TRACKER_FILE, {"mlflow": record})

    def track(self, values: dict[str, float], step: int) -> None:
        """Log ``values`` at ``step`` to the tracker (main process; nothing without one)."""
        if self._accelerator is not None:
            self._accelerator.log(values, step=step)

    def finish(self) -> None:
        """Flush and close the tracker.

        Not ``accelerator.end_training()``: it would also take down the process group of a
        torchrun launch.
        """
        if self._accelerator is not None:
            for tracker in self._accelerator.trackers:
                tracker.finish()
            self._accelerator = None


__all__ = [
    "MLFLOW_STORE",
    "TRACKER_FILE",
    "ProgressCallback",
    "Reporter",
    "TrainEvent",
    "log_evaluation",
    "make_tracker",
    "mlflow_store",
    "mlflow_tracking_uri",
]
