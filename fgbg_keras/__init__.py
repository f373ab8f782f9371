"""fgbg: self-supervised foreground/background separation for controllable video generation."""

__version__ = "0.1.0"
