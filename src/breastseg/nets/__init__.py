"""Network builders and a registry (name → constructor); nothing else lives here."""

from __future__ import annotations

from breastseg.nets.resunet import ResUNetConfig, build_resunet

REGISTRY = {"resunet": build_resunet}

__all__ = ["REGISTRY", "ResUNetConfig", "build_resunet"]
