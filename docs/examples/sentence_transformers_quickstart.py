"""Train with SentenceTransformerTrainer on langmix's hybrid batches, then score XQuAD-R."""

import os

from sentence_transformers import SentenceTransformerTrainer

import langmix

MODEL = os.environ.get("LANGMIX_EXAMPLE_MODEL", "offline:multilingual-e5-small")
STEPS = int(os.environ.get("LANGMIX_EXAMPLE_STEPS", "200"))
ARTICLES = int(os.environ.get("LANGMIX_EXAMPLE_ARTICLES", "48"))  # all of XQuAD-R's 48
OUT = os.environ.get("LANGMIX_EXAMPLE_OUT", "runs/st-hybrid")
LANGUAGES = ["en", "de", "es"]

# MLQA-R (query, answer) pairs; files from $LANGMIX_DATA_DIR, else the cache or a download.
pairs = langmix.ParallelPairs.from_lareqa(langmix.load_lareqa("mlqa-r", LANGUAGES))
sampler = langmix.LanguageBatchSampler([pairs], batch_size=16, strategy="hybrid", alpha=0.5)

model = langmix.load_model(MODEL, max_seq_length=128)
adapter = langmix.SentenceTransformersAdapter(sampler)
# Batch size, the batch sampler hook and the E5 prompts come from the adapter.
args = adapter.training_arguments(
    model, OUT, max_steps=STEPS, learning_rate=2e-5, seed=0, save_strategy="no"
)
loss = langmix.SentenceTransformersInfoNCELoss(model, temperature=0.05)
SentenceTransformerTrainer(model, args, train_dataset=adapter.dataset(), loss=loss).train()
model.save_pretrained(f"{OUT}/model")

# LAReQA: every question against the candidates of all languages, pooled.
test = langmix.load_lareqa("xquad-r", LANGUAGES).first_articles(ARTICLES)
query_lang, cand_lang, rel_indptr, rel_indices = test.relevance_arrays()
queries = model.encode(test.query_texts(), prompt_name="query", normalize_embeddings=True)
passages = model.encode(test.passage_texts(), prompt_name="passage", normalize_embeddings=True)
result = langmix.evaluate_lareqa(
    queries, passages, query_lang, cand_lang, rel_indptr, rel_indices, test.languages
)
print({setting: round(value, 3) for setting, value in result.map.items()})
