"""The distributed path on Ray (the optional extra ``vendiscope[ray]``): a Ray session opened the
way Ray's own tools open one (session), embeddings read where they live (sources), Vendi scores
and contributions as Ray tasks merged in a tree (score), embedding with Ray Data and an actor
pool (embed), a comparison's independent pieces as Ray tasks (compare). Imports Ray only when a
function needs it."""
from explorer.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "explorer.distributed.compare": ["RayBackend", "backend_for"],
    "explorer.distributed.embed": ["RayEmbeddingResult", "embed_with_ray"],
    "explorer.distributed.score": ["RayVendi"],
    "explorer.distributed.session": ["RAY_EXTRA", "import_ray", "ray_session", "resolve_address"],
    "explorer.distributed.sources": ["EmbeddingSource", "open_source"],
})
