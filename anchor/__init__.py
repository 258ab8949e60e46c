"""anchor: a digital-human anchor that airs scheduled scripts on institutional live streams."""

__version__ = "0.1.0"
