"""The sandbox in a process of its own, for the big run: the product's in-process launcher, the receiver and
the test then have the test process (one interpreter lock) to themselves, and the sandbox another core.

    python -m tests.chaos.sandbox_process PORT SEED CONFIG_JSON     (CONFIG_JSON: SandboxConfig's fields)
"""

from __future__ import annotations

import json
import logging
import sys

import uvicorn

from sandbox.app import SandboxConfig, create_app
from sandbox.state import SandboxState

if __name__ == "__main__":
    port, seed, config = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
    app = create_app(SandboxState(seed=seed), SandboxConfig(**config))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical",
                                           access_log=False, lifespan="off", timeout_keep_alive=30))
    logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)  # its connection drops are faults
    server.run()
