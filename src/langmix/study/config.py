"""Study configuration: a TOML file naming the grid, validated before anything runs.

Every key, with its type, default and meaning: ``docs/study-config.md`` (generated from
:mod:`langmix.study.config_keys`, the vocabulary validated here).

Layout (every table but ``[study]`` and ``[[models]]`` is optional)::

    [study]
    name = "demo"
    description = "What was run and what was cut, in words (printed in the report)."
    compare_with = "cpu-full"   # optional: a sibling study (another size family, the same
                                # sizes at another budget) whose claims the report pairs with
                                # this one's (langmix.study.families)
    strategies = ["mono", "cross", "hybrid", "random"]
    alphas = [0.5]              # hybrid only; one cell per alpha
    seeds = [0]
    strategy_seeds = { random = [0, 1, 2] }   # optional: other seeds for some strategies
                                # (e.g. fewer for a secondary baseline; see langmix power)
    primary = "xquad-r"         # optional: the evaluation set of the primary family of
                                # tests (default: the first test set)
    equivalence_margin = 0.005  # optional: the margin of the equivalence tests (mAP)
    untrained = true            # evaluate each model before training, as the reference
    keep_models = true          # false: evaluate each trained model in memory, never write it
    report_to = "none"          # training curves of every cell: none, tensorboard, wandb, mlflow
                                # (TensorBoard: cells/.../train/tensorboard; wandb run names
                                # are "{study name}/{cell key}")

    [[models]]
    name = "offline:multilingual-e5-small@L2"
    label = "L2"                # optional, defaults to the part after '@' or the name
    train = { max_steps = 200 } # optional: [train] options for this size only (steps,
                                # learning rate, patience, ...)
    alphas = [0.25, 0.5, 0.75]  # optional: this size's hybrid alphas (default: [study]'s)

    [train]                     # any langmix train option (TrainArguments field)
    train = ["mlqa-r"]
    max_steps = 60
    batch_size = 16
    eval_steps = 30             # optional: validate every 30 steps and keep the best step's
                                # model; without it (and without early_stopping_patience)
                                # there is no validation and the last step's model is kept

    [[eval]]
    dataset = "xquad-r"         # xquad-r | mlqa-r | miracl
    split = "all"               # all | heldout (the training set's test groups, never
                                # trained or validated on; needs test_fraction in [train])
                                # | validation (the groups that choose checkpoints)
    articles = 12               # optional: only the first N articles (a cheaper subset)
    languages = ["en", "de"]    # optional
    with_context = true
    query_max_length = 64
    passage_max_length = 128
    batch_size = 64
    corpus = "DIR"              # miracl: a JSONL corpus file or a directory of {lang}.jsonl
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from langmix.data.errors import DataError, did_you_mean, not_utf8
from langmix.sampling.sampler import STRATEGIES
from langmix.study.config_keys import (
    _CELL_SETTINGS,
    _SHARED_SETTINGS,
    _STUDY_SETTINGS,
    MODEL_KEYS,
    STUDY_KEYS,
)
from langmix.training.arguments import TrainArguments, check_report_to


@dataclass(frozen=True)
class ModelSpec:
    name: str
    label: str
    # [train] options for this model only, e.g. more steps or a lower learning rate.
    train: tuple[tuple[str, Any], ...] = ()
    # Hybrid alphas for this model only (e.g. the alpha sweep at the cheap sizes).
    alphas: tuple[float, ...] | None = None


@dataclass(frozen=True)
class EvalSpec:
    """One evaluation set of the study."""

    dataset: str
    split: str = "all"
    articles: int | None = None
    languages: tuple[str, ...] | None = None
    with_context: bool = True
    query_max_length: int = 64
    passage_max_length: int = 128
    batch_size: int = 64
    corpus: str | None = None
    top_k: int = 100
    trec_depth: int = 0

    @property
    def name(self) -> str:
        """The evaluation set's name in results (``xquad-r``, ``mlqa-r:heldout``, ``miracl:sw``)."""
        base = self.dataset
        if self.dataset == "miracl":
            base += ":" + ",".join(self.languages or ())
        if self.split != "all":
            base += f":{self.split}"
        if self.articles:
            base += f"[:{self.articles}]"
        return base


@dataclass(frozen=True)
class Cell:
    """One trained (or untrained) model of the grid."""

    model: ModelSpec
    strategy: str  # "untrained" or a sampling strategy
    alpha: float | None
    seed: int | None

    @property
    def key(self) -> str:
        if self.strategy == "untrained":
            return f"{self.model.label}/untrained"
        alpha = f"-a{self.alpha:g}" if self.alpha is not None else ""
        return f"{self.model.label}/{self.strategy}{alpha}-s{self.seed}"


@dataclass
class StudyConfig:
    """A validated study: models × strategies (× alphas) × seeds, and evaluation sets.

    Example:
        >>> config = load_study_config("configs/demo.toml")  # doctest: +SKIP
        >>> len(config.cells())  # doctest: +SKIP
        15
    """

    name: str
    models: list[ModelSpec]
    strategies: list[str]
    alphas: list[float]
    seeds: list[int]
    untrained: bool
    train: dict[str, Any]
    evals: list[EvalSpec]
    description: str = ""
    keep_models: bool = True
    report_to: str = "none"
    #: The evaluation set of the primary family of tests ("" for the first test set).
    primary: str = ""
    #: Margin of the equivalence tests, in the metric's units.
    equivalence_margin: float = 0.005
    #: Seeds of the strategies that do not use ``seeds`` (strategy -> seeds).
    strategy_seeds: dict[str, list[int]] = field(default_factory=dict)
    path: Path | None = field(default=None, repr=False)

    def cells(self) -> list[Cell]:
        """The grid in run order: per model (small to large as listed), untrained first."""
        cells = []
        for model in self.models:
            if self.untrained:
                cells.append(Cell(model, "untrained", None, None))
            all_seeds = sorted(
                {s for v in self.strategy_seeds.values() for s in v} | set(self.seeds)
            )
            for seed in all_seeds:
                for strategy in self.strategies:
                    if seed not in self.strategy_seeds.get(strategy, self.seeds):
                        continue
                    hybrid = strategy == "hybrid"
                    for alpha in list(model.alphas or self.alphas) if hybrid else [None]:
                        cells.append(Cell(model, strategy, alpha, seed))
        return cells

    def train_arguments(self, cell: Cell, output_dir: str | os.PathLike[str]) -> TrainArguments:
        """The ``langmix train`` arguments of one cell.

        The run is named ``{study name}/{cell key}`` for the trackers. Without ``keep_models``
        the trained model is not written at all: the study evaluates it in memory.
        """
        settings = dict(self.train)
        settings.update(dict(cell.model.train))
        settings.update(
            model=cell.model.name,
            output_dir=str(output_dir),
            sampling=cell.strategy,
            alpha=cell.alpha if cell.alpha is not None else 0.5,
            seed=cell.seed,
            run_name=f"{self.name}/{cell.key}",
            report_to=self.report_to,
            save_model=self.keep_models,
        )
        return TrainArguments(**settings)


_SEE_DEMO = "configs/demo.toml shows every table"


def _fail(path: Path, problem: str, record: str | None = None, fix: str | None = None) -> DataError:
    return DataError(path, problem, record=record, fix=fix)


# What each scalar key must hold. TOML is typed, but a value of the wrong type would otherwise
# surface as a TypeError deep inside training; bool is excluded where a number is meant.
_NUMBER = (int, float)
_STUDY_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "description": (str,),
    "compare_with": (str,),
    "primary": (str,),
    "equivalence_margin": _NUMBER,
    "untrained": (bool,),
    "keep_models": (bool,),
    "report_to": (str,),
}
_EVAL_TYPES: dict[str, tuple[type, ...]] = {
    "dataset": (str,),
    "split": (str,),
    "articles": (int,),
    "with_context": (bool,),
    "query_max_length": (int,),
    "passage_max_length": (int,),
    "batch_size": (int,),
    "corpus": (str,),
    "top_k": (int,),
    "trec_depth": (int,),
}


def _check_type(path: Path, where: str, key: str, value: Any, types: tuple[type, ...]) -> None:
    wrong_bool = isinstance(value, bool) and bool not in types
    if wrong_bool or not isinstance(value, types):
        expected = " or ".join(t.__name__ for t in types)
        raise _fail(path, f"{key} must be a {expected}, got {value!r}", where)


def _check_list(path: Path, where: str, key: str, value: Any, types: tuple[type, ...]) -> list:
    if not isinstance(value, list) or not value:
        raise _fail(path, f"{key} must be a non-empty list, got {value!r}", where)
    for item in value:
        _check_type(path, where, f"each of {key}", item, types)
    return value


def _distilled_split_problem(name: str, train: dict[str, Any]) -> str | None:
    """Why a distilled student cannot take part in a study with these [train] settings.

    A student was distilled on the training part of MLQA-R under one split; a study that
    splits otherwise (fractions, seed, or a language subset, which changes the article
    groups) could test on text the student has seen.
    """
    from langmix.distillation.arguments import DistillArguments
    from langmix.models.offline import OFFLINE_PREFIX, parse_offline_name

    if not name.startswith(OFFLINE_PREFIX):
        return None
    try:
        distilled = parse_offline_name(name).distilled
    except ValueError:
        return None  # an unknown name is refused with the other unrunnable settings
    if not distilled:
        return None
    recipe = DistillArguments(layers=1, output_dir="-")
    study = {
        "validation_fraction": train.get("validation_fraction", 0.1),
        "test_fraction": train.get("test_fraction", 0.0),
        "split_seed": train.get("split_seed", 0),
    }
    differs = [k for k, v in study.items() if v != getattr(recipe, k)]
    if train.get("languages"):
        differs.append("languages")
    if not differs:
        return None
    return (
        f"{name} was distilled on the training part of {recipe.dataset} split with "
        f"validation_fraction = {recipe.validation_fraction}, test_fraction = "
        f"{recipe.test_fraction}, split_seed = {recipe.split_seed} and all languages; this "
        f"study's [train] differs in {', '.join(differs)}, so its held-out parts could hold "
        "text the student was distilled on (use those settings, or a layer cut)"
    )


def load_study_config(path: str | os.PathLike[str]) -> StudyConfig:
    """Read and validate a study TOML file (layout in the module docstring).

    Raises:
        DataError: Naming the file and the table for bad TOML, unknown keys, strategies,
            datasets or training options, or an empty grid.
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _fail(path, f"cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise not_utf8(path, exc) from exc
    except tomllib.TOMLDecodeError as exc:
        # tomllib reports the position only inside its message: "(at line 3, column 7)".
        found = re.search(r"\(at (line \d+, column \d+|end of document)\)$", str(exc))
        problem = str(exc)[: found.start()].rstrip() if found else str(exc)
        raise _fail(
            path,
            f"not valid TOML: {problem}",
            record=found.group(1) if found else None,
            fix="a file cut short ends mid-statement; compare with configs/demo.toml",
        ) from exc
    unknown = set(raw) - {"study", "models", "train", "eval"}
    if unknown:
        raise _fail(
            path,
            f"unknown table(s) {', '.join(sorted(unknown))}"
            + did_you_mean(sorted(unknown), ["study", "models", "train", "eval"]),
            "top level",
            "the tables are [study], [[models]], [train] and [[eval]]",
        )
    study = raw.get("study")
    if not isinstance(study, dict) or "name" not in study:
        raise _fail(path, "a [study] table with a name is required", "[study]", _SEE_DEMO)
    allowed = set(STUDY_KEYS)
    extra = set(study) - allowed
    if extra:
        raise _fail(
            path,
            f"unknown key(s) {', '.join(sorted(extra))}" + did_you_mean(sorted(extra), allowed),
            "[study]",
            f"[study] keys: {', '.join(sorted(allowed))}",
        )
    for key, types in _STUDY_TYPES.items():
        if key in study:
            _check_type(path, "[study]", key, study[key], types)
    strategies = _check_list(
        path, "[study]", "strategies", study.get("strategies", list(STRATEGIES)), (str,)
    )
    bad = [s for s in strategies if s not in STRATEGIES]
    if bad:
        raise _fail(
            path,
            f"strategies must be among {', '.join(STRATEGIES)}, got {bad}"
            + did_you_mean(bad, STRATEGIES),
            "[study]",
        )
    alphas = [
        float(a)
        for a in _check_list(path, "[study]", "alphas", study.get("alphas", [0.5]), _NUMBER)
    ]
    if any(not 0 <= a <= 1 for a in alphas):
        raise _fail(path, f"alphas must be in [0, 1], got {alphas}", "[study]")
    seeds = _check_list(path, "[study]", "seeds", study.get("seeds", [0]), (int,))
    strategy_seeds = study.get("strategy_seeds", {})
    if not isinstance(strategy_seeds, dict):
        raise _fail(path, "strategy_seeds must be a table of strategy = [seeds]", "[study]")
    for strategy, values in strategy_seeds.items():
        if strategy not in strategies:
            raise _fail(
                path,
                f"strategy_seeds names {strategy!r}, which is not among the study's "
                f"strategies ({', '.join(strategies)})",
                "[study]",
            )
        _check_list(path, "[study]", f"strategy_seeds.{strategy}", values, (int,))
    try:
        check_report_to(study.get("report_to", "none"))
    except ValueError as exc:
        raise _fail(path, str(exc).replace("--report-to", "report_to"), "[study]") from exc

    models_raw = raw.get("models")
    if not isinstance(models_raw, list) or not models_raw:
        raise _fail(path, "at least one [[models]] entry is required", "[[models]]", _SEE_DEMO)
    models = []
    for number, entry in enumerate(models_raw, start=1):
        where = f"[[models]] #{number}"
        if not isinstance(entry, dict) or "name" not in entry:
            raise _fail(path, "each [[models]] entry needs a name", where)
        extra = set(entry) - set(MODEL_KEYS)
        if extra:
            raise _fail(
                path,
                f"unknown key(s) {', '.join(sorted(extra))}"
                + did_you_mean(sorted(extra), MODEL_KEYS),
                where,
            )
        for key in ("name", "label"):
            if key in entry:
                _check_type(path, where, key, entry[key], (str,))
        overrides = entry.get("train", {})
        if not isinstance(overrides, dict):
            raise _fail(path, "train must be a table of training options", where)
        bad_keys = set(overrides) - {f.name for f in fields(TrainArguments)}
        if bad_keys:
            raise _fail(
                path,
                f"unknown training option(s) {', '.join(sorted(bad_keys))}"
                + did_you_mean(sorted(bad_keys), [f.name for f in fields(TrainArguments)]),
                where,
            )
        if set(overrides) & (_CELL_SETTINGS | set(_STUDY_SETTINGS) | _SHARED_SETTINGS):
            raise _fail(
                path,
                "a model's train table may not set "
                + ", ".join(
                    sorted(
                        set(overrides) & (_CELL_SETTINGS | set(_STUDY_SETTINGS) | _SHARED_SETTINGS)
                    )
                )
                + " (the grid or the whole study sets them)",
                where,
            )
        name = entry["name"]
        label = entry.get("label") or (
            name.rsplit("@", 1)[1] if "@" in name else name.split("/")[-1]
        )
        model_alphas = None
        if "alphas" in entry:
            model_alphas = tuple(
                float(a) for a in _check_list(path, where, "alphas", entry["alphas"], _NUMBER)
            )
            if any(not 0 <= a <= 1 for a in model_alphas):
                raise _fail(path, f"alphas must be in [0, 1], got {list(model_alphas)}", where)
        models.append(ModelSpec(name, label, tuple(sorted(overrides.items())), model_alphas))
    labels = [m.label for m in models]
    if len(set(labels)) != len(labels):
        raise _fail(path, f"model labels must be distinct, got {labels}", "[[models]]")

    if not isinstance(raw.get("train", {}), dict):
        raise _fail(path, "[train] must be a table", "[train]")
    train = dict(raw.get("train", {}))
    if "train" in train:
        _check_list(path, "[train]", "train", train["train"], (str,))
    known = {f.name for f in fields(TrainArguments)}
    wrong = set(train) - known
    if wrong:
        raise _fail(
            path,
            f"unknown training option(s) {', '.join(sorted(wrong))}"
            + did_you_mean(sorted(wrong), known),
            "[train]",
        )
    fixed = set(train) & _CELL_SETTINGS
    if fixed:
        raise _fail(
            path,
            f"{', '.join(sorted(fixed))} are set per cell by the grid, not in [train]",
            "[train]",
        )
    for key in sorted(set(train) & set(_STUDY_SETTINGS)):
        raise _fail(
            path,
            f"{key} follows the study: set {_STUDY_SETTINGS[key]} in [study], not {key} in [train]",
            "[train]",
        )
    train.setdefault("train", ["mlqa-r"])
    config = StudyConfig(
        name=str(study["name"]),
        models=models,
        strategies=strategies,
        alphas=alphas,
        seeds=seeds,
        untrained=bool(study.get("untrained", True)),
        train=train,
        evals=[],
        description=str(study.get("description", "")),
        keep_models=bool(study.get("keep_models", True)),
        report_to=str(study.get("report_to", "none")),
        strategy_seeds={k: list(v) for k, v in strategy_seeds.items()},
        primary=str(study.get("primary", "")),
        equivalence_margin=float(study.get("equivalence_margin", 0.005)),
        path=path,
    )
    # Validate the training options once per model, with a stand-in cell, before anything runs.
    for model in models:
        try:
            config.train_arguments(Cell(model, strategies[0], alphas[0], seeds[0]), "x")
        except (TypeError, ValueError) as exc:
            where = f"[[models]] {model.label}" if model.train else "[train]"
            raise _fail(path, f"bad training options: {exc}", where) from exc
        problem = _distilled_split_problem(model.name, train)
        if problem:
            raise _fail(path, problem, f"[[models]] {model.label}")

    eval_raw = raw.get("eval", [])
    if not isinstance(eval_raw, list) or not eval_raw:
        raise _fail(path, "at least one [[eval]] entry is required", "[[eval]]", _SEE_DEMO)
    eval_fields = {f.name for f in fields(EvalSpec)}
    for number, entry in enumerate(eval_raw, start=1):
        where = f"[[eval]] #{number}"
        if not isinstance(entry, dict) or "dataset" not in entry:
            raise _fail(path, "each [[eval]] entry needs a dataset", where)
        extra = set(entry) - eval_fields
        if extra:
            raise _fail(
                path,
                f"unknown key(s) {', '.join(sorted(extra))}"
                + did_you_mean(sorted(extra), eval_fields),
                where,
            )
        for key, types in _EVAL_TYPES.items():
            if key in entry:
                _check_type(path, where, key, entry[key], types)
        for key in ("articles", "query_max_length", "passage_max_length", "batch_size", "top_k"):
            if key in entry and entry[key] < 1:
                raise _fail(path, f"{key} must be positive, got {entry[key]}", where)
        if entry.get("trec_depth", 0) < 0:
            raise _fail(path, f"trec_depth must be 0 or more, got {entry['trec_depth']}", where)
        values = dict(entry)
        if "languages" in values:
            values["languages"] = tuple(
                _check_list(path, where, "languages", values["languages"], (str,))
            )
        spec = EvalSpec(**values)
        if spec.dataset not in ("xquad-r", "mlqa-r", "miracl"):
            raise _fail(
                path,
                f"dataset must be xquad-r, mlqa-r or miracl, got {spec.dataset!r}"
                + did_you_mean([spec.dataset], ["xquad-r", "mlqa-r", "miracl"]),
                where,
            )
        if spec.split not in ("all", "heldout", "validation"):
            raise _fail(
                path,
                f"split must be 'all', 'heldout' or 'validation', got {spec.split!r}",
                where,
            )
        if spec.split != "all" and spec.dataset not in train["train"]:
            raise _fail(
                path, f"split {spec.split!r} needs {spec.dataset} among the training sets", where
            )
        if spec.split != "all" and not train.get("validation_fraction", 0.1):
            raise _fail(
                path, f"split {spec.split!r} needs a validation_fraction > 0 in [train]", where
            )
        if spec.split == "heldout" and not train.get("test_fraction", 0.0):
            raise _fail(
                path,
                "split 'heldout' evaluates the untouched test groups: set test_fraction > 0 "
                "in [train] (the validation groups choose checkpoints, so they are not held "
                "out; evaluate them with split = 'validation')",
                where,
            )
        if spec.dataset == "miracl" and not (spec.languages and spec.corpus):
            raise _fail(path, "miracl needs languages and a corpus", where)
        config.evals.append(spec)
    names = [e.name for e in config.evals]
    if len(set(names)) != len(names):
        raise _fail(path, f"evaluation sets must differ, got {names}", "[[eval]]")
    if config.primary and config.primary not in names:
        raise _fail(
            path,
            f"primary = {config.primary!r} is not an evaluation set of the study "
            f"({', '.join(names)})",
            "[study]",
        )
    if config.primary.endswith(":validation"):
        raise _fail(path, "the primary set cannot be the validation part", "[study]")
    if not config.equivalence_margin > 0:
        raise _fail(path, "equivalence_margin must be positive", "[study]")
    return config
