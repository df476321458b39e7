"""kit: learn how containers get their filesystem by building real containers from scratch."""

__version__ = "0.1.0"
