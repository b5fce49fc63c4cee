"""A langmix model through mteb gives langmix's numbers: mteb sends documents with the prefix.

mteb encodes documents with ``SentenceTransformer.encode_document``, which takes the model's
``document`` prompt. A model langmix saved must carry the passage prefix there, or mteb (and
every ``encode_document`` user) scores bare passages. The task is LAReQA's multilingual
setting on real XQuAD-R (one article, English and German): every query against the pooled
candidates of both languages, its answer sentence in each language relevant. The pool is far
below 1000, so mteb's ``map_at_1000`` is the full average precision, LAReQA's mAP.
"""

from __future__ import annotations

from pathlib import Path

import pytest

mteb = pytest.importorskip("mteb")

from datasets import Dataset  # noqa: E402
from mteb.abstasks.retrieval import AbsTaskRetrieval  # noqa: E402
from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData  # noqa: E402
from mteb.abstasks.task_metadata import TaskMetadata  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402

from langmix.data import load_lareqa  # noqa: E402
from langmix.evaluation.lareqa import encode_lareqa, score_lareqa  # noqa: E402
from langmix.models import load_model  # noqa: E402


def _lareqa_task(dataset) -> AbsTaskRetrieval:
    """LAReQA's pooled (multilingual) setting of ``dataset`` as an mteb retrieval task."""

    class LareqaMultilingual(AbsTaskRetrieval):
        metadata = TaskMetadata(
            type="Retrieval",
            name="LangmixLareqaMultilingual",
            main_score="map_at_1000",
            description="LAReQA's multilingual setting on one XQuAD-R article (langmix test).",
            reference="https://arxiv.org/abs/2004.05484",
            dataset={"path": "NA", "revision": "NA"},
            category="t2t",
            eval_splits=["test"],
            eval_langs=["eng-Latn", "deu-Latn"],
            date=("2020-04-01", "2020-04-01"),
            dialect=[],
            domains=[],
            task_subtypes=[],
            license="cc-by-sa-4.0",
            annotations_creators="derived",
            modalities=["text"],
            sample_creation="found",
            bibtex_citation="",
        )

        def load_data(self, num_proc: int | None = None, **kwargs) -> None:
            split = RetrievalSplitData(
                queries=Dataset.from_list([{"id": q.id, "text": q.text} for q in dataset.queries]),
                corpus=Dataset.from_list(
                    [{"id": c.id, "text": c.text, "title": ""} for c in dataset.candidates]
                ),
                relevant_docs={
                    q.id: {c.id: 1 for c in dataset.relevant(q)} for q in dataset.queries
                },
                top_ranked=None,
            )
            self.dataset = {"default": {"test": split}}
            self.data_loaded = True

    return LareqaMultilingual()


def _mteb_map(model: SentenceTransformer, dataset) -> float:
    result = mteb.evaluate(model, _lareqa_task(dataset), cache=None)
    return result.task_results[0].scores["test"][0]["map_at_1000"]


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_mteb_scores_a_saved_langmix_model_as_langmix_does(data_dir: Path, tmp_path: Path):
    dataset = load_lareqa("xquad-r", ["en", "de"], data_dir=data_dir).first_articles(1)
    assert len(dataset.candidates) < 1000  # map_at_1000 is then the full AP
    model = load_model("offline:multilingual-e5-small@L2")
    model.save(str(tmp_path / "model"))
    saved = SentenceTransformer(str(tmp_path / "model"), device="cpu")

    ours = score_lareqa(
        dataset, encode_lareqa(model, dataset, with_context=False, show_progress=False)
    ).map["multi"]
    # English and German ask the same questions, so the macro mean over query languages is
    # the plain mean over queries that mteb reports.
    assert _mteb_map(saved, dataset) == pytest.approx(ours, abs=1e-4)

    # The test can fail: the same model with bare documents (the empty "document" prompt
    # langmix used to save) scores otherwise.
    saved.prompts["document"] = ""
    assert abs(_mteb_map(saved, dataset) - ours) > 1e-3
