"""A corpus for real MIRACL topics: every judged passage, the relevant ones restating their
question (so a working encoder must rank them first), the others scrambled."""

from __future__ import annotations

from langmix.data.miracl import MiraclLanguage


def judged_passages(data: MiraclLanguage) -> list[dict[str, str]]:
    rows, seen = [], set()
    for qid, judged in data.qrels.items():
        for docid, grade in judged.items():
            if docid not in seen:
                seen.add(docid)
                text = data.topics[qid] if grade > 0 else f"{docid} {data.topics[qid][::-1]}"
                rows.append({"docid": docid, "title": "", "text": text})
    return rows


def relevant_docids(data: MiraclLanguage) -> list[str]:
    """Every judged-relevant docid, once each, in qrels order."""
    return list(dict.fromkeys(d for judged in data.qrels.values() for d, g in judged.items() if g))
