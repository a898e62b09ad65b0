"""The embedders themselves: pixels, EfficientNet-Lite0, MiniLM and open_clip."""
