"""Items to vectors: the embedder registry, the embedders (embed.models), CPU and GPU decoding,
the embedding pipeline and its content-addressed vector store."""
from explorer.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "explorer.embed.models.base": ["Embedder", "resolve_device"],
    "explorer.embed.pipeline": ["EmbeddingResult", "embed_dataset", "write_embeddings"],
    "explorer.embed.registry": ["embedder_choices", "get_embedder", "register_embedder", "resolve_embedder",
                                "unregister_embedder"],
})
