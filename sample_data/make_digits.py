"""Build the bundled digits sample dataset: real scikit-learn digits plus model samples.

Writes 32x32 grayscale PNGs to <out>/<set>/<label>/ and a manifest.csv (path,set,label).
Sets: real (1,797 digits), gmm (T=1.0, all classes), collapsed (T=0.5, classes 0/1/7 only)
and lowtemp (T=0.3, all classes). Output is bit-for-bit deterministic.
Run: python sample_data/make_digits.py [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture

PCA_COMPONENTS = 24
GMM_COMPONENTS = 4
SEED = 0
SIZE = 32


@dataclass(frozen=True)
class SampleSet:
    name: str
    classes: tuple[int, ...]
    temperature: float
    total: int
    seed: int


SAMPLE_SETS = (
    SampleSet("gmm", tuple(range(10)), 1.0, 1000, 1),
    SampleSet("collapsed", (0, 1, 7), 0.5, 1000, 2),
    SampleSet("lowtemp", tuple(range(10)), 0.3, 1000, 3),
)
ALL_SETS = ("real",) + tuple(s.name for s in SAMPLE_SETS)


def to_image(pixels: np.ndarray) -> Image.Image:
    """8x8 array with values in [0, 16] -> 32x32 8-bit grayscale image."""
    scaled = np.rint(np.clip(pixels, 0.0, 16.0) * (255.0 / 16.0)).astype(np.uint8)
    img = Image.fromarray(scaled.reshape(8, 8))
    return img.resize((SIZE, SIZE), Image.Resampling.BICUBIC)


def fit_models(codes: np.ndarray, labels: np.ndarray) -> dict[int, GaussianMixture]:
    """One full-covariance Gaussian mixture per class, fitted on that class's PCA codes."""
    models = {}
    for label in sorted(np.unique(labels).tolist()):
        gmm = GaussianMixture(GMM_COMPONENTS, covariance_type="full", random_state=SEED)
        models[label] = gmm.fit(codes[labels == label])
    return models


def sample_codes(
    gmm: GaussianMixture, n: int, temperature: float, rng: np.random.Generator
) -> np.ndarray:
    """Draw n codes; the deviation from the chosen component mean is scaled by temperature."""
    comps = rng.choice(gmm.n_components, size=n, p=gmm.weights_)
    chol = np.linalg.cholesky(gmm.covariances_)
    eps = rng.standard_normal((n, gmm.means_.shape[1]))
    dev = np.einsum("nij,nj->ni", chol[comps], eps)
    return gmm.means_[comps] + temperature * dev


def split_counts(total: int, k: int) -> list[int]:
    return [total // k + (1 if i < total % k else 0) for i in range(k)]


def write_images(
    out: Path, set_name: str, images: np.ndarray, labels: np.ndarray, ids: np.ndarray
) -> list[tuple[str, str, int]]:
    rows = []
    for pixels, label, idx in zip(images, labels.tolist(), ids.tolist()):
        rel = f"{set_name}/{label}/{set_name}_{idx:04d}.png"
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        to_image(pixels).save(path, format="PNG")
        rows.append((rel, set_name, label))
    return rows


def make_set(
    spec: SampleSet, pca: PCA, models: dict[int, GaussianMixture], out: Path
) -> list[tuple[str, str, int]]:
    rng = np.random.default_rng(spec.seed)
    codes, labels = [], []
    for label, n in zip(spec.classes, split_counts(spec.total, len(spec.classes))):
        codes.append(sample_codes(models[label], n, spec.temperature, rng))
        labels.append(np.full(n, label))
    images = np.clip(pca.inverse_transform(np.concatenate(codes)), 0.0, 16.0)
    return write_images(out, spec.name, images, np.concatenate(labels), np.arange(spec.total))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "digits")
    out: Path = parser.parse_args().out
    for name in ALL_SETS:
        shutil.rmtree(out / name, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)

    digits = load_digits()
    data, target = digits.data.astype(np.float64), digits.target.astype(np.int64)
    pca = PCA(PCA_COMPONENTS, whiten=False, svd_solver="full").fit(data)
    models = fit_models(pca.transform(data), target)

    rows = write_images(out, "real", data, target, np.arange(len(data)))
    for spec in SAMPLE_SETS:
        rows += make_set(spec, pca, models, out)
    rows.sort(key=lambda r: (r[1], r[0]))
    with open(out / "manifest.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(("path", "set", "label"))
        writer.writerows(rows)
    counts = {name: sum(r[1] == name for r in rows) for name in ALL_SETS}
    print(f"wrote {len(rows)} images to {out}: {counts}")


if __name__ == "__main__":
    main()
