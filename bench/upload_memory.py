"""The platform clients' memory during a 2 GB upload, and their upload throughput against curl's.

    .venv/bin/python -m bench upload_memory  # results in bench/results/upload_memory.json

The sandbox runs in this process; each upload runs in a CHILD process (`python -m bench.upload_memory
child ...`), so the sandbox's memory is not counted. The child imports everything, builds the clients
with the one factory (platforms.factory.build_clients), publishes a 1 MB warm-up video, then reads its
resident set (VmRSS) as the baseline, resets the kernel's high-water mark (/proc/self/clear_refs) and
publishes the big file. Peak = VmHWM after the publish (also polled every 10 ms as a cross-check);
the figure is peak - baseline. Each child also reports getrusage(RUSAGE_SELF).ru_maxrss, its whole
life's peak (imports and warm-up included). (RUSAGE_CHILDREN in the parent is not used: `make bench`
runs other benches' worker processes from the same parent, and their peaks would show up there.)

The file is sparse (f.truncate), so reading it costs no disk I/O: the throughput is the client's and the
sandbox's, over loopback. Sizes: 2 GiB for YouTube (resumable, 8 MiB chunks), TikTok (chunked, 10 MiB)
and Instagram (rupload, one streamed request); 512 MiB for X (its own limit for tweet_video).

Upload throughput counts the upload phase only, read from the client's intent log (which it writes at
each step): YouTube session opened -> video id; TikTok init answered -> last chunk accepted; X media
initialized -> finalized; Instagram container created -> publish attempted (this one includes the
container's processing wait). curl then uploads the same bytes to the same endpoints: one PUT of the
whole file to a YouTube session URI, and TikTok's chunks (the client's chunk layout) to an upload_url,
all in one curl process with keep-alive. curl's `Expect: 100-continue` wait is switched off, and the
TikTok chunks go as `--data-binary @chunk` because `-T` appends the file name to a URL whose path ends
in "/" (TikTok's upload_url does).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.harness import BENCH_LIMITS, ROOT, VAR, load

GIB = 1024**3
MIB = 1024**2
SIZES = {"youtube": 2 * GIB, "tiktok": 2 * GIB, "instagram": 2 * GIB, "x": 512 * MIB}
if os.environ.get("BENCH_QUICK") == "1":  # a smoke run with small files
    SIZES = {p: 64 * MIB for p in SIZES}


# the child ---------------------------------------------------------------------------------------------
def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class _Recorder:
    """An IntentLog in front of the store that remembers when each state was saved."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.saves: list[tuple[float, dict[str, Any]]] = []

    def load(self, campaign_id: str, platform: str) -> dict[str, Any]:
        return self.store.load(campaign_id, platform)  # type: ignore[no-any-return]

    def save(self, campaign_id: str, platform: str, state: dict[str, Any]) -> None:
        self.store.save(campaign_id, platform, state)
        self.saves.append((time.perf_counter(), json.loads(json.dumps(state))))

    def first(self, test: Any) -> float | None:
        return next((t for t, s in self.saves if test(s)), None)


def _upload_span(platform: str, rec: _Recorder) -> tuple[float | None, float | None]:
    if platform == "youtube":
        return rec.first(lambda s: "session_uri" in s), rec.first(lambda s: "video_id" in s)
    if platform == "tiktok":
        return (rec.first(lambda s: "publish_id" in s),
                rec.first(lambda s: s.get("video_size") and s.get("uploaded") == s["video_size"]))
    if platform == "x":
        return (rec.first(lambda s: "media" in s),
                rec.first(lambda s: bool(s.get("media", {}).get("finalized"))))
    return rec.first(lambda s: "container_id" in s), rec.first(lambda s: bool(s.get("publish_attempted")))


def _plan(platform: str, campaign_id: str) -> Any:
    from models import Platform, PlatformCopy, PlatformPlan

    p = Platform(platform)
    copy = PlatformCopy(platform=p, title="Bench Upload" if p is Platform.YOUTUBE else None,
                        text=f"Bench upload {campaign_id} #newmusic")
    return PlatformPlan.model_validate({"campaign_id": campaign_id, "platform": p, "copy": copy,
                                       "daily_budget": 10.0})


def child(platform: str, sandbox_url: str, path: str, var_dir: str) -> dict[str, Any]:
    import asyncio

    from metacentric.media import make_demo_video
    from metacentric.settings import Settings
    from metacentric.store import Store
    from models import Platform
    from platforms.factory import build_clients

    settings = Settings(var_dir=Path(var_dir), sandbox_url=sandbox_url).for_sandbox(sandbox_url)
    store = Store(f"sqlite:///{Path(var_dir) / f'{platform}.db'}")
    warm_video = str(make_demo_video(Path(var_dir) / f"warm-{platform}.mp4", size=MIB, seed=platform))

    async def main() -> dict[str, Any]:
        clients = build_clients(settings, store)
        client = clients.publishers[Platform(platform)]
        tag = f"{platform}-{int(time.time() * 1000)}"
        store.claim_post(f"warm-{tag}", platform)
        await client.publish(_plan(platform, f"warm-{tag}"), warm_video, store)
        baseline_kb = _status_kb("VmRSS")
        try:
            Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
            hwm_reset = True
        except OSError:
            hwm_reset = False
        polled = [baseline_kb]
        stop = threading.Event()

        def poll() -> None:
            while not stop.is_set():
                polled.append(_status_kb("VmRSS"))
                time.sleep(0.01)

        watcher = threading.Thread(target=poll, daemon=True)
        watcher.start()
        rec = _Recorder(store)
        store.claim_post(f"big-{tag}", platform)
        started = time.perf_counter()
        post = await client.publish(_plan(platform, f"big-{tag}"), path, rec)
        total = time.perf_counter() - started
        stop.set()
        watcher.join()
        await clients.aclose()
        first, last = _upload_span(platform, rec)
        size = os.path.getsize(path)
        peak_kb = _status_kb("VmHWM") if hwm_reset else max(polled)
        return {"platform": platform, "bytes": size, "post_id": post.post_id,
                "baseline_rss_mb": round(baseline_kb / 1024, 1), "peak_rss_mb": round(peak_kb / 1024, 1),
                "peak_above_baseline_mb": round((peak_kb - baseline_kb) / 1024, 1),
                "polled_peak_above_baseline_mb": round((max(polled) - baseline_kb) / 1024, 1),
                "hwm_reset": hwm_reset,
                "process_lifetime_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "publish_s": round(total, 2),
                "upload_s": round(last - first, 2) if first and last else None,
                "upload_mb_per_s": round(size / MIB / (last - first), 1) if first and last else None}

    return asyncio.run(main())


# the parent --------------------------------------------------------------------------------------------
def _sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def _run_child(platform: str, sandbox_url: str, path: Path, var_dir: Path) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "bench.upload_memory", "child", platform, sandbox_url, str(path),
                          str(var_dir)], cwd=ROOT, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"{platform} child failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _curl(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(["curl", "-sS", "-o", "/dev/null", "--fail-with-body", *args], check=True, timeout=900)
    return time.perf_counter() - started


def curl_youtube(sandbox_url: str, path: Path) -> dict[str, Any]:
    import httpx

    size = path.stat().st_size
    init = httpx.post(f"{sandbox_url}/youtube/upload/youtube/v3/videos",
                      params={"uploadType": "resumable", "part": "snippet,status"},
                      headers={"Authorization": "Bearer sandbox-token", "X-Upload-Content-Type": "video/mp4",
                               "X-Upload-Content-Length": str(size)},
                      json={"snippet": {"title": "curl upload"}, "status": {"privacyStatus": "private"}}, timeout=30)
    init.raise_for_status()
    seconds = _curl(["-T", str(path), "-H", "Expect:", "-H", f"Content-Range: bytes 0-{size - 1}/{size}",
                     "-H", "Content-Type: video/mp4", init.headers["location"]])
    return {"bytes": size, "requests": 1, "upload_s": round(seconds, 2),
            "upload_mb_per_s": round(size / MIB / seconds, 1)}


def curl_tiktok(sandbox_url: str, path: Path, work: Path) -> dict[str, Any]:
    import httpx

    from platforms.tiktok_wire import DEFAULT_CHUNK, ChunkPlan

    size = path.stat().st_size
    plan = ChunkPlan.for_file(size, DEFAULT_CHUNK)  # the client's own layout
    init = httpx.post(f"{sandbox_url}/tiktok/v2/post/publish/video/init/",
                      headers={"Authorization": "Bearer sandbox-token"},
                      json={"post_info": {"title": "curl upload", "privacy_level": "SELF_ONLY"},
                            "source_info": {"source": "FILE_UPLOAD", "video_size": size, "chunk_size": plan.chunk,
                                            "total_chunk_count": plan.count}}, timeout=30)
    init.raise_for_status()
    url = init.json()["data"]["upload_url"]
    # The file is all zeros (sparse), so each chunk's bytes equal a sparse file of the chunk's length.
    chunk = _sparse(work / "chunk.bin", plan.chunk)
    final_len = size - (plan.count - 1) * plan.chunk
    final = _sparse(work / "final.bin", final_len)
    args: list[str] = []
    for i in range(plan.count):
        first = i * plan.chunk
        last = size - 1 if i == plan.count - 1 else first + plan.chunk - 1
        if args:
            args.append("--next")
        # --data-binary, not -T: -T appends the file name to a URL whose path ends in "/" (TikTok's does).
        args += ["-sS", "-o", "/dev/null", "--fail-with-body", "-X", "PUT",
                 "--data-binary", "@" + str(final if i == plan.count - 1 else chunk),
                 "-H", "Expect:", "-H", f"Content-Range: bytes {first}-{last}/{size}", "-H", "Content-Type: video/mp4",
                 url]
    config = work / "curl.cfg"  # hundreds of --next sections: pass them as a config file, not argv
    config.write_text("\n".join(_as_config(args)))
    seconds = _curl(["-K", str(config)])
    chunk.unlink()
    final.unlink()
    return {"bytes": size, "requests": plan.count, "chunk_bytes": plan.chunk, "curl_body": "--data-binary @chunk",
            "upload_s": round(seconds, 2),
            "upload_mb_per_s": round(size / MIB / seconds, 1)}


def _as_config(args: list[str]) -> list[str]:
    """curl command-line options as config-file lines ("-T x" -> 'upload-file = "x"')."""
    names = {"-sS": None, "-o": "output", "--fail-with-body": "fail-with-body", "-T": "upload-file",
             "-H": "header", "--next": "next", "-X": "request", "--data-binary": "data-binary"}
    lines, i = [], 0
    while i < len(args):
        a = args[i]
        if a == "-sS":
            lines += ["silent", "show-error"]
            i += 1
        elif a in ("--fail-with-body", "--next"):
            lines.append(str(names[a]))
            i += 1
        elif a in names:
            lines.append(f'{names[a]} = "{args[i + 1]}"')
            i += 2
        else:  # a URL
            lines.append(f'url = "{a}"')
            i += 1
    return lines


def run() -> dict[str, Any]:
    from sandbox.app import SandboxConfig
    from sandbox.server import start_in_thread
    from sandbox.state import SandboxState

    work = VAR / "upload"
    subprocess.run(["rm", "-rf", str(work)], check=True)
    work.mkdir(parents=True)
    figures: dict[str, Any] = {"load_at_start": load(), "curl": subprocess.run(
        ["curl", "--version"], capture_output=True, text=True).stdout.splitlines()[0]}
    clients: dict[str, Any] = {}
    curl: dict[str, Any] = {}
    with start_in_thread(SandboxState(seed=9), config=SandboxConfig(limits=BENCH_LIMITS)) as sandbox:
        big = {size: _sparse(work / f"sparse-{size}.mp4", size) for size in set(SIZES.values())}
        try:
            for platform, size in SIZES.items():
                at_start = load()
                clients[platform] = {**_run_child(platform, sandbox.url, big[size], work), "load_at_start": at_start}
            with tempfile.TemporaryDirectory(dir=work) as tmp:
                curl["youtube"] = {**curl_youtube(sandbox.url, big[SIZES["youtube"]]), "load_at_start": load()}
                curl["tiktok"] = {**curl_tiktok(sandbox.url, big[SIZES["tiktok"]], Path(tmp)),
                                  "load_at_start": load()}
        finally:
            for path in big.values():
                path.unlink(missing_ok=True)
            subprocess.run(["rm", "-rf", str(work)], check=False)
    figures["clients"] = clients
    figures["curl"] = {"version": figures.pop("curl"), **curl}
    figures["client_vs_curl_throughput"] = {
        p: round(clients[p]["upload_mb_per_s"] / curl[p]["upload_mb_per_s"], 2)
        for p in curl if clients.get(p, {}).get("upload_mb_per_s")}
    figures["target_peak_above_baseline_mb"] = 100
    figures["load_at_end"] = load()
    return figures


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "child":
        print(json.dumps(child(*sys.argv[2:6])))
    else:
        print(json.dumps(run(), indent=2))
