"""Acting on diversity: choosing diverse subsets of a dataset (select) and the other curation
tools built on the metrics, one module each. Import from the modules themselves."""
