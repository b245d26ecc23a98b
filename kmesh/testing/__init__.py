"""Helpers shipped for users' and kmesh's own tests: free ports and real ``kmesh-cp`` processes.

``CpProcess`` runs a control plane as a subprocess with a private data dir and a free API port and waits
until it serves; ``run_cp`` runs the command to completion; ``free_port`` finds a port nothing listens on.
"""

from __future__ import annotations

from kmesh.testing._ports import free_port
from kmesh.testing._process import CpProcess, CpProcessError, cp_env, run_cp

__all__ = ["CpProcess", "CpProcessError", "cp_env", "free_port", "run_cp"]
