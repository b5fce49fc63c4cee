"""The ``langmix`` command: parses arguments into typed dataclasses and calls the API.

No logic lives here; every command is a function of the library that can be called from
Python with the same dataclass.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

USAGE = """usage: langmix COMMAND [options]

commands:
  train    fine-tune a dual encoder with mono / cross / hybrid / random batches
  distill  distil a shallower student from the 12-layer offline model (an offline size)
  study    run a scaling study (models x strategies x seeds), resumable, with a report
  report   rebuild a study's report.md and plots from its results.jsonl
  publish  copy a study's results and reduced per-query arrays to a folder, with its report
  power    the minimum detectable effect of a finished study, and the seeds a target needs
  eval     evaluate a model on XQuAD-R, MLQA-R (LAReQA protocol) or MIRACL
  encode-corpus  encode a JSONL corpus into resumable float16 shards (torchrun: N processes)
  index    build a faiss index (flat, ivfpq, hnsw) from encoded shards
  search   retrieve MIRACL topics from an index; write run.trec and metrics.json
  models   list the offline model family and its parameter counts

Run 'langmix COMMAND --help' for a command's options.
"""


@dataclass
class ConsoleArguments:
    """How much of the libraries' own output ``langmix eval`` and ``langmix study`` show."""

    verbose: bool = field(
        default=False,
        metadata={
            "help": "Show the libraries' own progress bars and messages (model loading and "
            "saving, encoding batches, warnings); by default they are silenced (a study keeps "
            "them in study.log)."
        },
    )


@contextlib.contextmanager
def library_output(verbose: bool) -> Iterator[None]:
    """Silence the libraries' progress bars and log messages, unless ``verbose``.

    transformers' bars ("Loading weights", "Writing model shards") and the hub's are turned
    off; transformers' own console handler is set aside so its messages propagate to the
    root logger like everyone else's, and Python warnings are routed there too. A root
    handler then decides where they go: a study's ``study.log`` while a study runs, else
    nowhere. Everything is restored on exit.

    Example:
        >>> with library_output(verbose=False):
        ...     pass
    """
    if verbose:
        yield
        return
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    root = logging.getLogger()
    # Without any root handler, Python's last-resort handler would print warnings anyway.
    discard = logging.NullHandler()
    hf_logging.disable_progress_bar()  # the hub's bars too
    hf_logging.disable_default_handler()
    hf_logging.enable_propagation()
    root.addHandler(discard)
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        root.removeHandler(discard)
        hf_logging.disable_propagation()
        hf_logging.enable_default_handler()
        if bars:
            hf_logging.enable_progress_bar()


def _eval(argv: Sequence[str]) -> int:
    from transformers import HfArgumentParser

    from langmix.evaluation.arguments import EvalArguments
    from langmix.evaluation.run import run_eval

    parser = HfArgumentParser((EvalArguments, ConsoleArguments), prog="langmix eval")
    args, console = parser.parse_args_into_dataclasses(list(argv))
    with library_output(console.verbose):
        # langmix's own bars (encoding, counted in texts) stay; the libraries' are silenced.
        document = run_eval(args, show_progress=True)
    print(format_summary(document))
    print(f"wrote {args.output_dir}/metrics.json")
    return 0


def _train(argv: Sequence[str]) -> int:
    from transformers import HfArgumentParser

    from langmix.training import TrainArguments, train

    parser = HfArgumentParser(TrainArguments, prog="langmix train")
    (args,) = parser.parse_args_into_dataclasses(list(argv))
    summary = train(args)
    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # under torchrun only the first process reports
    best = summary["best_validation_loss"]
    print(
        f"trained {summary['steps']} steps at {summary['examples_per_s']} examples/s"
        + (f", best validation loss {best:.4f} at step {summary['best_step']}" if best else "")
    )
    if summary["model"]:
        print(f"wrote {summary['model']}")
    return 0


def _distill(argv: Sequence[str]) -> int:
    from transformers import HfArgumentParser

    from langmix.distillation import DistillArguments, distill

    parser = HfArgumentParser((DistillArguments, ConsoleArguments), prog="langmix distill")
    args, console = parser.parse_args_into_dataclasses(list(argv))
    with library_output(console.verbose):
        summary = distill(args)
    print(
        f"distilled L{args.layers} in {summary['steps']} steps "
        f"({summary['seconds_per_step']} s/step), final loss {summary['final_loss']}"
    )
    print(f"wrote {summary['model']}")
    return 0


def _study(argv: Sequence[str]) -> int:
    from transformers import HfArgumentParser

    from langmix.study.runner import StudyArguments, run_study

    parser = HfArgumentParser((StudyArguments, ConsoleArguments), prog="langmix study")
    args, console = parser.parse_args_into_dataclasses(list(argv))
    with library_output(console.verbose):
        summary = run_study(
            args.config,
            args.output_dir,
            data_dir=args.data_dir,
            show_progress=args.progress,
            verbose=console.verbose,
            overwrite=args.overwrite,
            reuse_from=args.reuse_from,
        )
    from langmix.study.results import plural

    print(
        f"study: {plural(summary.cells, 'cell')}, {summary.skipped} already done, "
        + (f"{summary.reused} taken from {args.reuse_from}, " if args.reuse_from else "")
        + f"{summary.finished} run, "
        f"{len(summary.failed)} failed, {summary.wall_seconds / 60:.1f} min"
    )
    print(f"wrote {args.output_dir}/results.jsonl and {args.output_dir}/report.md")
    return 1 if summary.failed else 0


def _encode_corpus(argv: Sequence[str]) -> int:
    from transformers import HfArgumentParser

    from langmix.evaluation.corpus import EncodeCorpusArguments, encode_corpus
    from langmix.models import load_model

    parser = HfArgumentParser(EncodeCorpusArguments, prog="langmix encode-corpus")
    (args,) = parser.parse_args_into_dataclasses(list(argv))
    device = None
    if "LOCAL_RANK" in os.environ:
        import torch

        # One process per GPU under torchrun; CPU processes share the machine's cores.
        if torch.cuda.is_available():
            device = f"cuda:{os.environ['LOCAL_RANK']}"
        else:
            torch.set_num_threads(max(1, torch.get_num_threads() // int(os.environ["WORLD_SIZE"])))
    model = load_model(args.model, device=device)
    done = encode_corpus(
        model,
        args.corpus,
        args.output_dir,
        model_name=args.model,
        shard_bytes=int(args.shard_mb * 2**20),
        batch_size=args.batch_size,
        max_length=args.max_length,
        show_progress=args.progress,
        overwrite=args.overwrite,
    )
    rank = os.environ.get("RANK", "0")
    print(
        f"rank {rank}: {done['shards_encoded']} shards encoded ({done['rows']} passages, "
        f"{done['seconds']:.1f} s), {done['shards_skipped']} already done"
    )
    return 0


def _index(argv: Sequence[str]) -> int:
    from transformers import HfArgumentParser

    from langmix.evaluation.index import IndexArguments, build_index

    parser = HfArgumentParser(IndexArguments, prog="langmix index")
    (args,) = parser.parse_args_into_dataclasses(list(argv))
    document = build_index(
        args.embeddings,
        args.output_dir,
        args.kind,
        nlist=args.nlist,
        pq_m=args.pq_m,
        hnsw_m=args.hnsw_m,
        train_size=args.train_size,
        seed=args.seed,
        overwrite=args.overwrite,
    )
    print(
        f"{document['factory']} over {document['rows']} passages in "
        f"{document['build_seconds']:.1f} s ({document['index_bytes'] / 2**20:.1f} MiB)"
    )
    print(f"wrote {args.output_dir}/index.faiss")
    return 0


def _search(argv: Sequence[str]) -> int:
    from transformers import HfArgumentParser

    from langmix.data.miracl import load_miracl
    from langmix.evaluation.index import DenseIndex
    from langmix.evaluation.retrieval import SearchArguments, search_miracl
    from langmix.models import load_model
    from langmix.outputs import claim_output_dir

    parser = HfArgumentParser(SearchArguments, prog="langmix search")
    (args,) = parser.parse_args_into_dataclasses(list(argv))
    incidental = {"output_dir", "data_dir", "batch_size", "overwrite"}
    settings = {k: v for k, v in asdict(args).items() if k not in incidental}
    settings["index"] = str(Path(args.index).resolve())
    claim_output_dir(
        args.output_dir,
        "search",
        settings,
        overwrite=args.overwrite,
        outputs=("run.trec", "metrics.json"),
    )
    data = load_miracl(args.language, args.split, data_dir=args.data_dir)
    index = DenseIndex(args.index, nprobe=args.nprobe, ef_search=args.ef_search)
    document = search_miracl(
        load_model(args.model),
        args.model,
        data,
        index,
        args.output_dir,
        top_k=args.top_k,
        batch_size=args.batch_size,
        query_max_length=args.query_max_length,
    )
    m = document["metrics"]
    print(
        f"MIRACL {args.language} {args.split} ({document['n_queries']} topics, "
        f"{document['n_passages']} passages): nDCG@10 {m['ndcg@10']:.4f}  "
        f"Recall@100 {m['recall@100']:.4f}  MAP@100 {m['map@100']:.4f}"
    )
    print(f"wrote {args.output_dir}/run.trec and metrics.json")
    return 0


def _report(argv: Sequence[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="langmix report",
        description="Rebuild report.md, claims.csv and plots/ of a study from results.jsonl.",
    )
    parser.add_argument("study_dir")
    parser.add_argument(
        "--plot-format",
        default="png",
        help="Figure formats, comma-separated: png (always written), pdf, svg.",
    )
    parser.add_argument("--dpi", type=int, default=120, help="Resolution of the PNG figures.")
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help (0) or a usage error (2), as an exit code
        return int(stop.code or 0)
    from langmix.study.report import build_report

    path = build_report(args.study_dir, plot_formats=args.plot_format.split(","), dpi=args.dpi)
    print(f"wrote {path}")
    return 0


def _publish(argv: Sequence[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="langmix publish",
        description="Copy results.jsonl, study.toml and the per-query arrays the report's "
        "statistics read (a few MB) into TARGET_DIR, then build TARGET_DIR/report.md and "
        "plots/ there: a folder to commit, from which `langmix report TARGET_DIR` rebuilds "
        "the same report. TARGET_DIR may be new, empty or an earlier publication of the same "
        "study; the study itself and other langmix runs are never replaced.",
    )
    parser.add_argument("study_dir")
    parser.add_argument("target_dir")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="Replace the publication files (results.jsonl, study.toml, report.md, claims.csv, "
        "plots/, cells/) of a folder that is not an earlier publication of this study; nothing "
        "else in it is touched.",
    )
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help (0) or a usage error (2), as an exit code
        return int(stop.code or 0)
    from langmix.study.publish import publish_study

    print(f"wrote {publish_study(args.study_dir, args.target_dir, overwrite=args.overwrite)}")
    return 0


def _power(argv: Sequence[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="langmix power",
        description="The minimum detectable effect of a finished study's hybrid − mono and "
        "− cross contrasts, now and with other numbers of seeds and questions, and the seeds "
        "per cell a target MDE needs (from its per-query files).",
    )
    parser.add_argument("study_dir")
    parser.add_argument("--seeds", type=int, default=None, help="Seeds per cell to plan for.")
    parser.add_argument(
        "--question-scale",
        type=float,
        default=1.0,
        help="Question clusters of the planned test set / the measured one.",
    )
    parser.add_argument("--target", type=float, default=0.005, help="Target MDE.")
    parser.add_argument("--metric", default="map_multi")
    parser.add_argument("--eval-set", default=None, help="Only this test set.")
    args = parser.parse_args(argv)
    from langmix.study.power import power_table

    lines = power_table(
        args.study_dir,
        seeds=args.seeds,
        question_scale=args.question_scale,
        target=args.target,
        metric=args.metric,
        eval_set=args.eval_set,
    )
    print("\n".join(lines))
    return 0


def format_summary(document: dict) -> str:
    """A short human-readable table of a metrics document."""
    if document.get("dataset") == "miracl":
        m = document["metrics"]
        return (
            f"MIRACL {','.join(document['languages'])}: nDCG@10 {m['ndcg@10']:.4f}  "
            f"Recall@100 {m['recall@100']:.4f}  MAP@100 {m['map@100']:.4f}"
        )
    m, r = document["map"], document["recall"]
    lines = [
        f"{document['dataset']} ({len(document['languages'])} languages, "
        f"{document['n_queries']} queries, {document['n_candidates']} candidates) "
        f"model {document['model']}",
        f"  mAP   mono {m['mono']:.4f}  cross {m['cross']:.4f}  multi {m['multi']:.4f}",
        f"  R@1   mono {r['mono@1']:.4f}  cross {r['cross@1']:.4f}  R@10 multi {r['multi@10']:.4f}",
        f"  rank distance {document['rank_distance']:.1f}",
    ]
    timing = document.get("timing")
    if timing:
        lines.append("  time " + ", ".join(f"{k} {v:.1f}" for k, v in timing.items()))
    return "\n".join(lines)


def _models(argv: Sequence[str]) -> int:
    from langmix.models.offline import OFFLINE_MODEL, offline_parameter_counts

    if argv and argv[0] in ("-h", "--help"):
        print(
            "usage: langmix models\n\nPrints the parameter counts of each layer cut of the "
            "offline model (and of its distilled students, which have the same shapes)."
        )
        return 0
    print(f"{'model':40s} {'total':>12s} {'non-embedding':>14s}")
    for k in range(1, 13):
        name = f"{OFFLINE_MODEL}@L{k}"
        counts = offline_parameter_counts(name)  # from the config: no model is loaded
        print(f"{name:40s} {counts.total:12,d} {counts.non_embedding:14,d}")
    return 0


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "train": _train,
    "distill": _distill,
    "study": _study,
    "report": _report,
    "publish": _publish,
    "power": _power,
    "eval": _eval,
    "encode-corpus": _encode_corpus,
    "index": _index,
    "search": _search,
    "models": _models,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``langmix`` command.

    Returns:
        The exit status: 0 on success, 2 on a usage or input error (with a one-line message).

    Example:
        >>> main(["eval", "--model", "offline:multilingual-e5-small", "--dataset", "xquad-r",
        ...       "--output-dir", "runs/eval"])  # doctest: +SKIP
        0
    """
    from langmix.data.errors import DataError, DataUnavailableError
    from langmix.models.loading import ModelUnavailableError

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command = COMMANDS.get(argv[0])
    if command is None:
        from langmix.data.errors import did_you_mean

        guess = did_you_mean([argv[0]], COMMANDS)
        print(f"langmix: unknown command {argv[0]!r}{guess}\n\n{USAGE}", file=sys.stderr)
        return 2
    try:
        return command(argv[1:])
    except (DataError, DataUnavailableError, ModelUnavailableError, ValueError) as exc:
        print(f"langmix {argv[0]}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        from langmix.outputs import is_disk_error

        if not is_disk_error(exc):
            raise
        # Finished work is safe: every output is written atomically; rerunning resumes.
        where = f" while writing {exc.filename}" if exc.filename else ""
        print(
            f"langmix {argv[0]}: error: {exc.strerror or exc}{where}; finished results are "
            "intact, free the disk and rerun the same command to continue",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print(
            f"langmix {argv[0]}: interrupted; finished work is kept (every output is written "
            "atomically): rerun the same command to go on from there",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
