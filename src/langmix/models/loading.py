"""Load any encoder the study can use as a ``SentenceTransformer``, with per-model defaults.

:func:`load_model` accepts three kinds of names:

* ``offline:multilingual-e5-small`` and ``offline:multilingual-e5-small@L{k}``: the bundled
  4-bit model, cached as a sentence-transformers directory (:mod:`langmix.models.offline`);
* a local directory: a sentence-transformers model (``modules.json``) is loaded as saved, a
  plain Hugging Face model directory (``config.json``) gets Transformer + Pooling + Normalize;
* a Hugging Face hub id, handled like a local directory once resolved. Offline machines fail
  fast with a message naming the alternatives, instead of the hub client's minute of retries.

Settings resolve in this order: the caller's argument, then :data:`MODEL_DEFAULTS` for the
name, then what a saved sentence-transformers model already has, then generic defaults (mean
pooling, L2 normalisation, no prefixes). Prefixes are installed as sentence-transformers
prompts named ``query`` and ``passage``, the passage one also as ``document`` (the name
sentence-transformers' ``encode_document`` and mteb use), so ``model.encode(texts,
prompt_name="query")``, ``encode_query`` and ``encode_document`` all apply them.
"""

from __future__ import annotations

import fnmatch
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from langmix.models.offline import (
    OFFLINE_MODEL,
    OFFLINE_PREFIX,
    load_offline_model,
    parse_offline_name,
)

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

POOLING_MODES: tuple[str, ...] = ("mean", "cls")
QUERY_PROMPT = "query"
PASSAGE_PROMPT = "passage"
#: sentence-transformers' name for the passage prompt (``encode_document``, mteb).
DOCUMENT_PROMPT = "document"
_HUB_PROBE_TIMEOUT_S = 3.0


class ModelUnavailableError(OSError):
    """A model could not be fetched (hub unreachable, unknown repository, missing files)."""


@dataclass(frozen=True)
class ModelDefaults:
    """Per-model defaults; ``None`` means "no opinion" (keep the model's own setting).

    Attributes:
        pooling: ``"mean"`` or ``"cls"`` when langmix builds or overrides the pooling module.
        normalize: Whether embeddings are L2-normalised.
        query_prefix: Text prepended to queries (``""`` = none).
        passage_prefix: Text prepended to passages (``""`` = none).
        use_model_modules: Keep a sentence-transformers model's own modules as saved (e.g.
            LaBSE's CLS pooling + Dense + Normalize) unless the caller overrides them.
    """

    pooling: str | None = None
    normalize: bool | None = None
    query_prefix: str | None = None
    passage_prefix: str | None = None
    use_model_modules: bool = False


#: Defaults by name pattern (``fnmatch``, first match wins). Names that match nothing get mean
#: pooling, normalisation and no prefixes when langmix has to build the pooling itself.
MODEL_DEFAULTS: dict[str, ModelDefaults] = {
    f"{OFFLINE_MODEL}*": ModelDefaults("mean", True, "query: ", "passage: "),
    "intfloat/multilingual-e5-*": ModelDefaults("mean", True, "query: ", "passage: "),
    # Raw MLM encoders: mean pooling is the usual choice; normalised for cosine retrieval.
    "xlm-roberta-*": ModelDefaults("mean", True, "", ""),
    "FacebookAI/xlm-roberta-*": ModelDefaults("mean", True, "", ""),
    "sentence-transformers/LaBSE": ModelDefaults(None, None, "", "", use_model_modules=True),
}

_GENERIC = ModelDefaults("mean", True, None, None)


def model_defaults(name: str) -> ModelDefaults:
    """Return the :data:`MODEL_DEFAULTS` entry matching ``name`` (or empty defaults).

    Example:
        >>> model_defaults("intfloat/multilingual-e5-base").query_prefix
        'query: '
    """
    for pattern, defaults in MODEL_DEFAULTS.items():
        if fnmatch.fnmatchcase(str(name), pattern):
            return defaults
    return ModelDefaults()


@dataclass(frozen=True)
class ParameterCounts:
    """Parameter counts of a model.

    Attributes:
        total: Every distinct parameter tensor's elements (tied tensors counted once).
        embedding: Elements of the input embedding tables, i.e. every ``torch.nn.Embedding``
            (for BERT/XLM-R: word, position and token-type embeddings). The embedding
            LayerNorm is not a lookup table and counts as non-embedding.
        non_embedding: ``total - embedding``: the transformer layers, the embedding LayerNorm,
            a pooler if present and any head (e.g. LaBSE's Dense).
    """

    total: int
    embedding: int
    non_embedding: int


def count_parameters(model: torch.nn.Module) -> ParameterCounts:
    """Count a model's parameters, split into embedding tables and the rest.

    Args:
        model: A ``SentenceTransformer`` or any ``torch.nn.Module``.

    Returns:
        :class:`ParameterCounts` (see there for the definitions).

    Example:
        >>> counts = count_parameters(load_model("offline:multilingual-e5-small@L2"))
        >>> counts.embedding
        96211584
    """
    import torch

    seen: set[int] = set()
    embedding = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Embedding) and id(module.weight) not in seen:
            seen.add(id(module.weight))
            embedding += module.weight.numel()
    total = 0
    seen_all: set[int] = set()
    for param in model.parameters():
        if id(param) not in seen_all:
            seen_all.add(id(param))
            total += param.numel()
    return ParameterCounts(total=total, embedding=embedding, non_embedding=total - embedding)


def _validate(
    name_or_path: Any,
    pooling: str | None,
    normalize: bool | None,
    query_prefix: str | None,
    passage_prefix: str | None,
    max_seq_length: int | None,
) -> str:
    if isinstance(name_or_path, os.PathLike):
        name_or_path = os.fspath(name_or_path)
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise ValueError(f"name_or_path must be a non-empty string or path, got {name_or_path!r}")
    if pooling is not None and pooling not in POOLING_MODES:
        raise ValueError(
            f"unknown pooling {pooling!r}; valid choices: {', '.join(map(repr, POOLING_MODES))}"
        )
    if normalize is not None and not isinstance(normalize, bool):
        raise ValueError(f"normalize must be True, False or None, got {normalize!r}")
    for label, prefix in (("query_prefix", query_prefix), ("passage_prefix", passage_prefix)):
        if prefix is not None and not isinstance(prefix, str):
            raise ValueError(f"{label} must be a string or None, got {prefix!r}")
    if max_seq_length is not None and (
        isinstance(max_seq_length, bool)
        or not isinstance(max_seq_length, int)
        or max_seq_length < 1
    ):
        raise ValueError(f"max_seq_length must be a positive integer, got {max_seq_length!r}")
    return name_or_path.strip()


def load_model(
    name_or_path: str | os.PathLike[str],
    *,
    pooling: str | None = None,
    normalize: bool | None = None,
    query_prefix: str | None = None,
    passage_prefix: str | None = None,
    max_seq_length: int | None = None,
    device: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> SentenceTransformer:
    """Load an encoder as a ``SentenceTransformer`` with langmix's defaults applied.

    Args:
        name_or_path: ``offline:multilingual-e5-small[@L{k}]``, a local directory, or a hub id.
        pooling: ``"mean"`` or ``"cls"``; replaces the model's pooling when given.
        normalize: Add (``True``) or remove (``False``) the final L2 normalisation.
        query_prefix: Prompt for queries (``""`` disables); stored as prompt ``"query"``.
        passage_prefix: Prompt for passages (``""`` disables); stored as prompt ``"passage"``.
        max_seq_length: Truncate inputs to this many tokens (at most the model's limit).
        device: Torch device, e.g. ``"cpu"``; sentence-transformers picks one when ``None``.
        cache_dir: langmix cache root for ``offline:`` builds (default ``$LANGMIX_CACHE_DIR`` or
            ``~/.cache/langmix``). Hub downloads use the Hugging Face cache as usual.

    Returns:
        The model, with ``model.langmix_name`` set to the name it was loaded by.

    Raises:
        ValueError: Invalid arguments, an unknown ``offline:`` name, or a path that is not a
            model directory.
        ModelUnavailableError: The hub cannot be reached or has no such model.

    Example:
        >>> model = load_model("offline:multilingual-e5-small@L2", max_seq_length=128)
        >>> model.encode(["Wie hoch ist die Zugspitze?"], prompt_name="query").shape
        (1, 384)
    """
    name = _validate(name_or_path, pooling, normalize, query_prefix, passage_prefix, max_seq_length)
    defaults = model_defaults(name)

    if name.startswith(OFFLINE_PREFIX):
        spec = parse_offline_name(name)  # ValueError listing the valid names
        name = spec.name  # canonical spelling for logs ("@L02" -> "@L2")
        model = load_offline_model(name, cache_dir=cache_dir, device=device)
        is_st = True
    else:
        model, is_st = _load_path_or_hub(
            name,
            defaults=defaults,
            pooling=pooling,
            normalize=normalize,
            max_seq_length=max_seq_length,
            device=device,
        )

    if is_st:
        # A saved sentence-transformers pipeline stands unless the caller overrides it, or the
        # defaults table does for a model it does not mark as keeping its own modules (LaBSE).
        use_defaults = not defaults.use_model_modules
        wanted_pooling = pooling or (defaults.pooling if use_defaults else None)
        wanted_normalize = (
            normalize if normalize is not None else (defaults.normalize if use_defaults else None)
        )
        if wanted_pooling is not None:
            _set_pooling(model, wanted_pooling)
        if wanted_normalize is not None:
            _set_normalize(model, wanted_normalize)

    _set_prompts(
        model,
        query_prefix if query_prefix is not None else defaults.query_prefix,
        passage_prefix if passage_prefix is not None else defaults.passage_prefix,
    )
    if max_seq_length is not None:
        limit = _max_positions(model)
        if limit is not None and max_seq_length > limit:
            raise ValueError(f"max_seq_length={max_seq_length} exceeds this model's limit {limit}")
        model.max_seq_length = max_seq_length
    model.langmix_name = name  # type: ignore[attr-defined]
    return model


# --------------------------------------------------------------------------------------------
# Local directories and the hub


def check_model(name_or_path: str) -> None:
    """Check that :func:`load_model` can find a model, without loading its weights.

    A study calls this for every model before its first cell, so that a typo or a missing
    network fails at once instead of after hours of other cells.

    Args:
        name_or_path: As for :func:`load_model`.

    Raises:
        ValueError: An unknown ``offline:`` name, or a path that is not a model directory.
        ModelUnavailableError: The model is neither local nor cached and the hub cannot be
            reached or has no such model.

    Example:
        >>> check_model("offline:multilingual-e5-small@L30")
        Traceback (most recent call last):
        ...
        ValueError: invalid layer count '30' in 'offline:multilingual-e5-small@L30': ...
    """
    name = name_or_path.strip() if isinstance(name_or_path, str) else name_or_path
    if not isinstance(name, str) or not name:
        raise ValueError(f"a model name must be a non-empty string, not {name_or_path!r}")
    if name.startswith(OFFLINE_PREFIX):
        parse_offline_name(name)
    else:
        _resolve_path_or_hub(name)


def _resolve_path_or_hub(name: str) -> tuple[str, bool, bool]:
    """Where a model comes from: (source, local files only, is a sentence-transformers model)."""
    path = Path(name).expanduser()
    # A hub id is "name" or "org/name"; more parts, or a first part that is a local folder
    # ("runs/x/model" beside runs/), can only be a path: say it is missing, not that the hub
    # is unreachable.
    looks_local = name.startswith((".", "/", "~")) or name.count("/") > 1
    looks_local = looks_local or ("/" in name and Path(name.split("/")[0]).is_dir())
    if path.exists() or looks_local:
        if not path.is_dir():
            problem = "is not a model directory" if path.exists() else "does not exist"
            raise ValueError(f"{name!r} {problem} (a local path; hub ids look like 'org/name')")
        is_st = (path / "modules.json").is_file()
        if not is_st and not (path / "config.json").is_file():
            inside = sorted(p.parent.name for p in path.glob("*/modules.json"))
            hint = (
                f"; did you mean {str(path / inside[0])!r} (the model a langmix run saved there)?"
                if inside
                else ""
            )
            raise ValueError(
                f"{name!r} is neither a sentence-transformers directory (modules.json) "
                f"nor a Hugging Face model directory (config.json){hint}"
            )
        return str(path), True, is_st
    cached = _in_hf_cache(name)
    if _hub_offline() and not cached:
        raise ModelUnavailableError(
            f"cannot load model {name!r}: it is not in the Hugging Face cache and HF_HUB_OFFLINE "
            f"(or TRANSFORMERS_OFFLINE) forbids downloading it. Unset it to download, or use "
            f"'{OFFLINE_MODEL}' (or '{OFFLINE_MODEL}@L{{k}}') or the path of a local model "
            "directory."
        )
    local_only = _hub_offline() or cached
    if not local_only:
        _require_hub(name)
    return name, local_only, _probe_sentence_transformer(name, local_only)


def _load_path_or_hub(
    name: str,
    *,
    defaults: ModelDefaults,
    pooling: str | None,
    normalize: bool | None,
    max_seq_length: int | None,
    device: str | None,
) -> tuple[SentenceTransformer, bool]:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    source, local_only, is_st = _resolve_path_or_hub(name)
    try:
        if is_st:
            return SentenceTransformer(source, device=device, local_files_only=local_only), True
        hub_kwargs = {"local_files_only": local_only}
        transformer = Transformer(
            source,
            model_kwargs=dict(hub_kwargs),
            processor_kwargs=dict(hub_kwargs),
            config_kwargs=dict(hub_kwargs),
            max_seq_length=max_seq_length,
        )
    except OSError as exc:
        raise _unavailable(name, exc) from exc
    pooling_mode = pooling or defaults.pooling or _GENERIC.pooling
    modules: list[torch.nn.Module] = [
        transformer,
        Pooling(transformer.get_embedding_dimension(), pooling_mode=pooling_mode),
    ]
    wanted_normalize = normalize if normalize is not None else defaults.normalize
    if wanted_normalize if wanted_normalize is not None else _GENERIC.normalize:
        modules.append(Normalize())
    return SentenceTransformer(modules=modules, device=device), False


def _hub_offline() -> bool:
    value = os.environ.get("HF_HUB_OFFLINE", os.environ.get("TRANSFORMERS_OFFLINE", ""))
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _in_hf_cache(name: str) -> bool:
    """Whether the hub cache already holds the model's config (then no network is needed)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except Exception:  # an invalid repo id simply is not cached
        return False


def _hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def _require_hub(name: str) -> None:
    """Fail in seconds when the hub cannot be reached, instead of after the client's retries."""
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return  # a proxy may reach what a direct connection cannot; let the client try
    url = urlparse(_hub_endpoint())
    host = url.hostname or "huggingface.co"
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=_HUB_PROBE_TIMEOUT_S):
            pass
    except OSError as exc:
        raise _unavailable(name, exc, unreachable=True) from exc


def _probe_sentence_transformer(name: str, local_only: bool) -> bool:
    from sentence_transformers.util.file_io import is_sentence_transformer_model

    try:
        return is_sentence_transformer_model(name, local_files_only=local_only)
    except Exception as exc:  # network, auth or unknown-repo errors from the hub client
        raise _unavailable(name, exc) from exc


def _unavailable(
    name: str, exc: BaseException, *, unreachable: bool = False
) -> ModelUnavailableError:
    what = (
        f"the Hugging Face hub ({_hub_endpoint()}) is unreachable"
        if unreachable
        else "it could not be loaded from the Hugging Face hub or its cache"
    )
    return ModelUnavailableError(
        f"cannot load model {name!r}: {what} ({type(exc).__name__}: {exc}). Without network, use "
        f"'{OFFLINE_MODEL}' (or '{OFFLINE_MODEL}@L{{k}}') or the path of a local model directory."
    )


# --------------------------------------------------------------------------------------------
# Module surgery on a loaded SentenceTransformer


def _find(model: SentenceTransformer, cls: type) -> list[str]:
    return [key for key, module in model._modules.items() if isinstance(module, cls)]


def _set_pooling(model: SentenceTransformer, mode: str) -> None:
    from sentence_transformers.sentence_transformer.modules import Pooling

    keys = _find(model, Pooling)
    if not keys:
        raise ValueError(f"cannot set pooling={mode!r}: the model has no Pooling module")
    for key in keys:
        old = model._modules[key]
        if old.pooling_mode != mode:
            model._modules[key] = Pooling(
                old.embedding_dimension, pooling_mode=mode, include_prompt=old.include_prompt
            )


def _set_normalize(model: SentenceTransformer, enabled: bool) -> None:
    from sentence_transformers.sentence_transformer.modules import Normalize

    keys = _find(model, Normalize)
    if enabled and not keys:
        numeric = [int(k) for k in model._modules if k.isdigit()]
        model._modules[str(max(numeric, default=-1) + 1)] = Normalize()
    elif not enabled:
        for key in keys:
            del model._modules[key]


def _set_prompts(model: SentenceTransformer, query: str | None, passage: str | None) -> None:
    prompts = dict(getattr(model, "prompts", None) or {})
    for prompt_name, prefix in ((QUERY_PROMPT, query), (PASSAGE_PROMPT, passage)):
        if prefix is not None:
            prompts[prompt_name] = prefix
    # sentence-transformers' encode_document, and mteb, send documents under "document"
    # (before "passage"), and a saved model without one gets "document": "" on loading: the
    # passage prefix must be the document prompt too, or those tools encode bare passages.
    if PASSAGE_PROMPT in prompts:
        prompts[DOCUMENT_PROMPT] = prompts[PASSAGE_PROMPT]
    model.prompts = prompts


def _max_positions(model: SentenceTransformer) -> int | None:
    first = model[0]
    config = getattr(getattr(first, "auto_model", None), "config", None)
    n_pos = getattr(config, "max_position_embeddings", None)
    if n_pos is None:
        return None
    # RoBERTa-style models reserve padding_idx + 1 positions (XLM-R: 514 -> 512 usable).
    if getattr(config, "model_type", "") in {"roberta", "xlm-roberta", "camembert"}:
        n_pos -= (getattr(config, "pad_token_id", None) or 0) + 1
    return n_pos


# --------------------------------------------------------------------------------------------
# Description for logs


def describe_model(model: SentenceTransformer) -> dict[str, Any]:
    """Summarise a loaded model for run logs.

    Returns:
        A JSON-serialisable dict with ``name``, ``layers``, ``hidden_size``, ``parameters``
        (``total``/``embedding``/``non_embedding``), ``pooling``, ``normalize``,
        ``prefixes`` (``query``/``passage``), ``max_seq_length`` and ``device``.

    Example:
        >>> describe_model(load_model("offline:multilingual-e5-small@L2"))["layers"]
        2
    """
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling

    config = getattr(getattr(model[0], "auto_model", None), "config", None)
    pools = [model._modules[k] for k in _find(model, Pooling)]
    counts = count_parameters(model)
    prompts = getattr(model, "prompts", None) or {}
    name = getattr(model, "langmix_name", None) or getattr(config, "_name_or_path", None)
    return {
        "name": name,
        "layers": getattr(config, "num_hidden_layers", None),
        "hidden_size": getattr(config, "hidden_size", None),
        "parameters": {
            "total": counts.total,
            "embedding": counts.embedding,
            "non_embedding": counts.non_embedding,
        },
        "pooling": pools[0].pooling_mode if pools else None,
        "normalize": bool(_find(model, Normalize)),
        "prefixes": {
            QUERY_PROMPT: prompts.get(QUERY_PROMPT, ""),
            PASSAGE_PROMPT: prompts.get(PASSAGE_PROMPT, ""),
        },
        "max_seq_length": model.max_seq_length,
        "device": str(model.device),
    }
