"""A worker process for the SIGKILL test: configure the runtime against a running sandbox, store and Prefect
API (PREFECT_API_URL in the environment), then launch the given campaigns concurrently.

    python -m tests.chaos.worker VAR_DIR SANDBOX_URL TAG CAMPAIGN_ID [CAMPAIGN_ID ...]

Prints "STARTED" once configured and "DONE <campaign> <state>" per finished launch; the test kills it
long before that, usually.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path


async def main(var_dir: Path, sandbox_url: str, tag: str, campaign_ids: list[str]) -> None:
    from prefect import tags

    from flows.calling import final_state
    from flows.launch_campaign import launch_campaign
    from metacentric import runtime
    from metacentric.settings import Settings
    from tests.chaos.world import relax_client_limits

    rt = runtime.configure(Settings(var_dir=var_dir, sandbox_url=sandbox_url))
    relax_client_limits(rt)
    print("STARTED", flush=True)

    async def one(cid: str) -> None:
        with tags(tag):
            state = await final_state(launch_campaign, cid)
        print("DONE", cid, state.type.value, flush=True)

    await asyncio.gather(*(one(cid) for cid in campaign_ids))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]))
