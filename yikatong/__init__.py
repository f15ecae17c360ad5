"""yikatong: the social security card one-card platform."""

__version__ = "0.1.0"
