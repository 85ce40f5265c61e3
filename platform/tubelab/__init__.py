"""tubelab: Ray-based experiment orchestration for video self-supervised learning."""

__version__ = "0.1.0"
