"""Typed arguments of an evaluation run (parsed by ``HfArgumentParser`` in the CLI)."""

from __future__ import annotations

from dataclasses import dataclass, field

EVAL_DATASETS = ("xquad-r", "mlqa-r", "miracl")


@dataclass
class EvalArguments:
    """Everything that shapes one evaluation; validated on construction.

    Example:
        >>> EvalArguments(model="offline:multilingual-e5-small@L2", dataset="xquad-r",
        ...               output_dir="runs/eval").languages is None
        True
    """

    model: str = field(metadata={"help": "Model name or path, e.g. offline:multilingual-e5-small"})
    dataset: str = field(metadata={"help": "xquad-r, mlqa-r, miracl, or a LAReQA-format dir"})
    output_dir: str = field(metadata={"help": "Where metrics.json (and embeddings.npz) go"})
    languages: str | None = field(
        default=None, metadata={"help": "Comma-separated languages (default: all)"}
    )
    data_dir: str | None = field(
        default=None, metadata={"help": "Local data directory (else LANGMIX_DATA_DIR or cache)"}
    )
    save_embeddings: bool = field(
        default=False, metadata={"help": "Also write embeddings.npz (the vectors scored)"}
    )
    batch_size: int = field(default=64, metadata={"help": "Encoding batch size"})
    query_max_length: int = field(default=64, metadata={"help": "Query truncation (tokens)"})
    passage_max_length: int = field(
        default=128, metadata={"help": "Passage truncation (tokens); sentence comes first"}
    )
    with_context: bool = field(
        default=True, metadata={"help": "Encode candidates as sentence + paragraph (LAReQA)"}
    )
    split: str = field(default="dev", metadata={"help": "MIRACL split"})
    corpus: str | None = field(
        default=None, metadata={"help": "MIRACL: JSONL corpus (docid, title, text); one language"}
    )
    top_k: int = field(default=100, metadata={"help": "MIRACL: passages retrieved per query"})
    trec_depth: int = field(
        default=0,
        metadata={
            "help": "LAReQA: also write the multilingual ranking's top N candidates per query "
            "as run.trec, with qrels.trec (for ranx, ir-measures, trec_eval); 0: none"
        },
    )
    cache_embeddings: bool = field(
        default=True, metadata={"help": "Reuse embeddings of texts this model already encoded"}
    )
    overwrite: bool = field(
        default=False,
        metadata={"help": "Replace results of other settings in output_dir (else refused)."},
    )

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("--model is required")
        for name in ("batch_size", "query_max_length", "passage_max_length", "top_k"):
            if getattr(self, name) <= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be positive")
        if self.trec_depth < 0:
            raise ValueError("--trec-depth must be >= 0 (0: no TREC run)")
