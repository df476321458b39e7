"""kit: learn how containers get their filesystem by building real containers from scratch."""

__version__ = "0.1.0"

#: The version of the OCI runtime specification kit implements (config.json, state JSON).
OCI_VERSION = "1.0.2"
