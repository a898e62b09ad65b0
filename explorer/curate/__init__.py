"""Acting on diversity, one module each: diverse subsets (select, on the blocked greedy in
greedy), representation by attribute (represent) and diversity per prompt (prompts)."""
from explorer.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "explorer.curate.prompts": ["per_prompt_of_sets", "prompt_diversity", "prompt_table"],
    "explorer.curate.represent": ["Representation", "cached_represent", "represent"],
    "explorer.curate.select": ["DiverseSubset", "cached_selection", "class_quotas", "diverse_subset"],
})
