"""Small text statistics used by the quickstart Spark job."""

from .core import word_count, top_words

__all__ = ["word_count", "top_words"]
