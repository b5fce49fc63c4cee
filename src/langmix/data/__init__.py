"""Data: typed records, the LAReQA and MIRACL readers, training pairs, and data sources."""

from __future__ import annotations

from langmix.data.errors import DataError, DataUnavailableError
from langmix.data.lareqa import (
    LAREQA_DATASETS,
    MLQA_R_LANGUAGES,
    XQUAD_R_LANGUAGES,
    load_lareqa,
    parse_languages,
    read_lareqa_file,
)
from langmix.data.mmarco import MMARCO_LANGUAGES, load_mmarco
from langmix.data.records import Candidate, LareqaDataset, Query, candidate_id, query_id
from langmix.data.sources import cache_dir, resolve_file

__all__ = [
    "LAREQA_DATASETS",
    "MLQA_R_LANGUAGES",
    "MMARCO_LANGUAGES",
    "XQUAD_R_LANGUAGES",
    "Candidate",
    "DataError",
    "DataUnavailableError",
    "LareqaDataset",
    "Query",
    "cache_dir",
    "candidate_id",
    "load_lareqa",
    "load_mmarco",
    "parse_languages",
    "query_id",
    "read_lareqa_file",
    "resolve_file",
]
