"""Unit tests of the built-in stage plugins on small real inputs (real FAISS, UMAP, HDBSCAN, MiniLM)."""
from __future__ import annotations

import duckdb
import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from seglens import plugins
from seglens.features import compute_features, feature_matrix
from seglens.model import Dataset


def _blobs(n=600, centers=4, dim=8, seed=0):
    x, y = make_blobs(n_samples=n, centers=centers, n_features=dim, cluster_std=0.6, random_state=seed)
    return x.astype(np.float32), y


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_faiss_index_finds_true_neighbours_and_round_trips(kind, tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2000, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    idx = plugins.create("index", "faiss", {"kind": kind})
    idx.build(x)
    q = x[:20]
    sims, rows = idx.search(q, 5)
    exact = np.argsort(-(q @ x.T), axis=1)[:, :5]
    recall = np.mean([len(set(rows[i]) & set(exact[i])) / 5 for i in range(20)])
    assert recall >= (1.0 if kind == "flat" else 0.8)
    assert rows[:, 0].tolist() == list(range(20)) or kind != "flat"
    idx.save(tmp_path / "i.faiss")
    again = plugins.create("index", "faiss", {"kind": kind})
    again.load(tmp_path / "i.faiss")
    assert again.size == 2000
    np.testing.assert_array_equal(again.search(q, 5)[1], rows)


def test_unknown_index_kind_is_a_user_error():
    from seglens.errors import SeglensError

    with pytest.raises(SeglensError, match="unknown index kind"):
        plugins.create("index", "faiss", {"kind": "lsh"})


def test_umap_is_deterministic_and_keeps_blobs_apart():
    x, y = _blobs()
    r1 = plugins.create("reducer", "umap", {}).reduce(x, 5, 42)
    r2 = plugins.create("reducer", "umap", {}).reduce(x, 5, 42)
    assert r1.shape == (600, 5)
    np.testing.assert_array_equal(r1, r2)
    labels = plugins.create("clusterer", "hdbscan", {}).cluster(r1, 42).labels
    assert adjusted_rand_score(y, labels) > 0.95


def test_umap_scale_settings():
    """UMAP's own defaults up to 2k users; 200 layout epochs (100 for a map on the reused graph) up to
    10k; above it PCA initialisation and 100 (50) epochs; explicit options always win."""
    r = plugins.create("reducer", "umap", {})
    assert [r._epochs(n, reuse) for n, reuse in [(1500, False), (3000, False), (3000, True), (50_000, False),
                                                  (50_000, True)]] == [None, 200, 100, 100, 50]
    assert r._init(3000, 5) == "spectral" and r._init(50_000, 5) == "pca"
    fixed = plugins.create("reducer", "umap", {"n_epochs": 30, "init": "random"})
    assert fixed._epochs(50_000, True) == 30 and fixed._init(50_000, 5) == "random"


def test_tiny_inputs_fall_back_to_pca():
    x = np.eye(4, dtype=np.float32)
    out = plugins.create("reducer", "umap", {}).reduce(x, 5, 42)
    assert out.shape == (4, 5)


def test_hdbscan_finds_unequal_clusters_and_noise():
    rng = np.random.default_rng(3)
    big, _ = make_blobs(n_samples=[900, 300, 60], centers=[[0, 0], [8, 8], [-8, 8]], cluster_std=0.5, random_state=2)
    noise = rng.uniform(-15, 15, size=(40, 2))
    x = np.vstack([big, noise])
    res = plugins.create("clusterer", "hdbscan", {}).cluster(x, 42)
    found = set(res.labels[res.labels >= 0].tolist())
    assert len(found) == 3
    assert (res.labels[-40:] < 0).mean() > 0.5
    assert 0 < res.quality["noise_share"] < 0.1
    assert "relative_validity" in res.quality
    assigned = plugins.create("clusterer", "hdbscan", {"assign_noise": True}).cluster(x, 42)
    assert (assigned.labels >= 0).all() and assigned.quality["reassigned_noise"] > 0


def test_hdbscan_all_noise_becomes_one_segment():
    x = np.random.default_rng(0).uniform(size=(30, 2))
    res = plugins.create("clusterer", "hdbscan", {"min_cluster_size": 25}).cluster(x, 42)
    assert set(res.labels.tolist()) == {0}
    assert "note" in res.quality


def test_kmeans_picks_k_by_silhouette():
    x, y = _blobs(centers=5)
    res = plugins.create("clusterer", "kmeans", {}).cluster(x, 42)
    assert res.params["k"] == 5
    assert adjusted_rand_score(y, res.labels) > 0.95
    assert ((res.probabilities >= 0) & (res.probabilities <= 1)).all()


def _tiny_dataset() -> Dataset:
    con = duckdb.connect()
    con.execute("""CREATE TABLE items AS SELECT * FROM (VALUES
        ('h1', 'The Haunting of Hill House', ['Horror'], 'A ghost story in a haunted mansion', 9.0),
        ('h2', 'Night of the Living Dead', ['Horror'], 'Zombies besiege a farmhouse', 5.0),
        ('h3', 'The Exorcist', ['Horror'], 'A demon possesses a girl', 7.0),
        ('k1', 'Toy Story', ['Animation', 'Children'], 'Toys come alive in a playroom', 8.0),
        ('k2', 'Finding Nemo', ['Animation', 'Children'], 'A clownfish searches the ocean for his son', 8.0),
        ('k3', 'The Lion King', ['Animation', 'Children'], 'A lion cub grows up to be king', 6.0)
    ) t(item_id, title, categories, description, price)""")
    rows = []
    for u in range(6):
        prefix = "h" if u < 3 else "k"
        for j in (1, 2, 3):
            rows.append(f"('u{u}', '{prefix}{j}', TIMESTAMP '2024-01-0{j} 2{u % 3}:00:00', 'rating', {3 + j % 3}.0, NULL)")
    con.execute("CREATE TABLE events AS SELECT * FROM (VALUES " + ",".join(rows) +
                ") t(user_id, item_id, ts, event, value, text)")
    con.execute("CREATE TABLE user_attrs AS SELECT DISTINCT user_id FROM events")
    return Dataset(con=con, inputs=[], value_kind="rating", has_catalog=True, loader="test")


def test_item_pool_embedder_puts_users_near_their_tastes(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGLENS_CACHE_DIR", str(tmp_path))
    ds = _tiny_dataset()
    feats = compute_features(ds)
    emb = plugins.create("embedder", "item-pool", {"model": "all-MiniLM-L6-v2"}).embed(ds, feats)
    assert emb.vectors.shape == (6, 384) and emb.vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb.vectors, axis=1), 1.0, rtol=1e-5)
    sim = emb.vectors @ emb.vectors.T
    assert sim[0, 1] > sim[0, 4] and sim[3, 4] > sim[3, 0]
    horror = plugins.create("embedder", "item-pool", {}).encode_texts(["scary horror movies with ghosts"])[0]
    assert horror @ emb.vectors[0] > horror @ emb.vectors[4]
    # The cache now holds the item texts: a second embedder gets identical vectors from it.
    again = plugins.create("embedder", "item-pool", {}).embed(ds, feats)
    np.testing.assert_allclose(again.vectors, emb.vectors, atol=1e-6)
    assert (tmp_path / "embeddings.sqlite").exists()


def test_history_text_embedder_and_renderer(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGLENS_CACHE_DIR", str(tmp_path))
    from seglens.history import render_all

    ds = _tiny_dataset()
    feats = compute_features(ds)
    hist = render_all(ds, feats, {"max_items": 40, "max_chars": 1000})
    assert "The Haunting of Hill House" in hist.texts[0] and "Horror" in hist.texts[0]
    assert "rated" in hist.texts[0] and "Toy Story" in hist.texts[3]
    short = render_all(ds, feats, {"max_items": 40, "max_chars": 60})
    assert all(len(t) <= 60 for t in short.texts)
    emb = plugins.create("embedder", "history-text", {}).embed(ds, feats)
    sim = emb.vectors @ emb.vectors.T
    assert sim[0, 1] > sim[0, 4]


def test_behaviour_embedder_and_features():
    ds = _tiny_dataset()
    feats = compute_features(ds)
    t = feats.table
    assert list(t["user_id"]) == [f"u{i}" for i in range(6)]
    assert (t["n_events"] == 3).all() and feats.category_columns
    assert t.loc[0, "cat_horror"] == 1.0 and t.loc[4, "cat_horror"] == 0.0
    m = feature_matrix(feats)
    assert m.shape[0] == 6 and np.isfinite(m).all()
    emb = plugins.create("embedder", "behaviour", {}).embed(ds, feats)
    assert emb.vectors.shape[0] == 6 and emb.model == "behaviour-features"


def test_missing_embedding_model_is_a_clear_error(tmp_path):
    from seglens.errors import SeglensError

    ds = _tiny_dataset()
    feats = compute_features(ds)
    with pytest.raises(SeglensError, match="could not load embedding model"):
        plugins.create("embedder", "item-pool", {"model": "no-such/model-xyz", "cache": False}).embed(ds, feats)
