"""The deploy files: Dockerfile, railway.json and prefect.yaml parse, agree with the code, and start
`metacentric serve` on $PORT.

The commands are run with a stand-in `metacentric` on PATH (it records its arguments and signals), so
these checks cost milliseconds. The real `metacentric serve` (its own sandbox and Prefect server, ~15-30 s)
runs in the `scale`-marked test at the end.
"""

from __future__ import annotations

import contextlib
import fnmatch
import importlib
import inspect
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jinja2
import pytest
import yaml
from prefect.client.schemas.schedules import CronSchedule
from prefect.flows import Flow
from prefect.settings import PREFECT_API_URL, temporary_settings

from deployments import served
from deployments.launcher import DEPLOYMENT_NAME, LAUNCH_EVENT, Launcher
from deployments.receiver import create_receiver
from metacentric.settings import Settings
from metacentric.store import Store
from sandbox.server import free_port

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


# reading the files -----------------------------------------------------------------------------------
def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def docker_cmd() -> list[str]:
    cmds = [args for instr, args in dockerfile() if instr == "CMD"]
    assert cmds, "the Dockerfile has no CMD"
    argv = json.loads(cmds[-1])  # exec form; shell form would not survive signals either
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv)
    return argv


def railway() -> dict[str, Any]:
    data = json.loads((REPO / "railway.json").read_text())
    assert isinstance(data, dict)
    return data


def railway_argv() -> list[str]:
    """How Railway runs startCommand for a Dockerfile build: exec form, no shell (docs.railway.com)."""
    return shlex.split(railway()["deploy"]["startCommand"])


def prefect_yaml() -> dict[str, Any]:
    data = yaml.safe_load((REPO / "prefect.yaml").read_text())
    assert isinstance(data, dict)
    return data


def entrypoint_flow(entrypoint: str) -> Flow[Any, Any]:
    path, func = entrypoint.split(":")
    assert (REPO / path).is_file(), entrypoint
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    obj = getattr(module, func)
    assert isinstance(obj, Flow), f"{entrypoint} is not a Prefect flow"
    return obj


# a stand-in `metacentric` ----------------------------------------------------------------------------
STUB = """#!/bin/sh
printf '%s\\n' "$@" > "$STUB_OUT/args"
trap 'echo TERM > "$STUB_OUT/signal"; exit 0' TERM
echo started > "$STUB_OUT/started"
while :; do sleep 0.05; done
"""


@pytest.fixture
def stub(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "metacentric").write_text(STUB)
    (bin_dir / "metacentric").chmod(0o755)
    return tmp_path


@pytest.fixture
def run_stubbed(stub: Path) -> Iterator[Any]:
    """Start argv with the stand-in first on PATH; yield (process, its recorded args once it started)."""
    procs: list[subprocess.Popen[bytes]] = []

    def run(argv: list[str], port: str | None) -> tuple[subprocess.Popen[bytes], list[str]]:
        env = {"PATH": f"{stub / 'bin'}:/usr/bin:/bin", "STUB_OUT": str(stub)}
        if port is not None:
            env["PORT"] = port
        for name in ("args", "started", "signal"):
            (stub / name).unlink(missing_ok=True)
        proc = subprocess.Popen(argv, env=env, start_new_session=True)
        procs.append(proc)
        deadline = time.monotonic() + 10
        while not (stub / "started").exists():
            assert proc.poll() is None or (stub / "started").exists(), f"{argv} exited ({proc.returncode})"
            assert time.monotonic() < deadline, f"{argv} did not start the stand-in"
            time.sleep(0.02)
        return proc, (stub / "args").read_text().splitlines()

    yield run
    for proc in procs:  # the whole session: sh and the stand-in, wherever the signal went
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def serves_on_port(args: list[str], port: str) -> bool:
    return args[:1] == ["serve"] and "--port" in args and args[args.index("--port") + 1] == port


def sigterm_reaches_metacentric(proc: subprocess.Popen[bytes], stub: Path) -> bool:
    """`docker stop` / a Railway redeploy send SIGTERM to the container's main process."""
    proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        if (stub / "signal").exists():
            return True
        time.sleep(0.05)
    return False


# Dockerfile ------------------------------------------------------------------------------------------
def test_dockerfile_installs_the_package_from_everything_it_is_made_of() -> None:
    instructions = dockerfile()
    base = next(args for instr, args in instructions if instr == "FROM")
    assert re.match(r"python:3\.(1[1-9])", base), base
    copied = {src for instr, args in instructions if instr == "COPY" for src in args.split()[:-1]}
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages <= copied, f"not copied into the image: {sorted(packages - copied)}"
    assert {"pyproject.toml", pyproject["project"]["readme"]} <= copied
    assert any(instr == "RUN" and re.search(r"pip install .*\s\.(\s|$)", args + " ") for instr, args in instructions)
    assert "metacentric" in pyproject["project"]["scripts"]


def test_dockerfile_cmd_runs_metacentric_serve_on_port(run_stubbed: Any) -> None:
    _, args = run_stubbed(docker_cmd(), port="5123")
    assert serves_on_port(args, "5123"), args
    _, args = run_stubbed(docker_cmd(), port=None)  # no $PORT: the documented default
    assert serves_on_port(args, "8000"), args


def test_dockerfile_cmd_hands_sigterm_to_metacentric(run_stubbed: Any, stub: Path) -> None:
    """Without `exec`, sh stays the main process and keeps the signal (as PID 1 it even ignores SIGTERM), so
    `docker stop` would end in SIGKILL and serve would never stop its Prefect server and served process."""
    proc, _ = run_stubbed(docker_cmd(), port="5123")
    assert sigterm_reaches_metacentric(proc, stub)


# railway.json ----------------------------------------------------------------------------------------
async def test_railway_json_builds_the_dockerfile_and_checks_a_route_the_receiver_serves(tmp_path: Path) -> None:
    config = railway()
    assert config["build"]["builder"] == "DOCKERFILE"
    assert (REPO / config["build"]["dockerfilePath"]).is_file()
    assert "metacentric serve" in config["deploy"]["startCommand"]

    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    launcher = Launcher(store)  # not started: the health route needs no launcher
    app = create_receiver(Settings(var_dir=tmp_path), store, launcher, meta=None)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://receiver") as http:
        health = await http.get(config["deploy"]["healthcheckPath"])
    launcher.loop.close()
    assert health.status_code == 200 and health.json()["status"] == "ok"


def test_railway_start_command_runs_metacentric_serve_on_port_as_railway_runs_it(
        run_stubbed: Any, stub: Path) -> None:
    """With the DOCKERFILE builder Railway runs startCommand in exec form (no shell): a bare
    `metacentric serve --port $PORT` would get the literal '$PORT'."""
    proc, args = run_stubbed(railway_argv(), port="5123")
    assert serves_on_port(args, "5123"), args
    assert sigterm_reaches_metacentric(proc, stub)


# prefect.yaml ----------------------------------------------------------------------------------------
def test_prefect_yaml_deployments_point_at_the_flows_with_their_parameters() -> None:
    config = prefect_yaml()
    deployments = {d["name"]: d for d in config["deployments"]}
    assert set(deployments) == {"launch-campaign", "optimize-campaigns", "retrain-model"}
    pools = {d["work_pool"]["name"] for d in deployments.values()}
    assert len(pools) == 1, pools  # one pool: the workers of the scale-out layout serve all three
    assert f"prefect work-pool create {pools.pop()} --type process" in (REPO / "prefect.yaml").read_text()

    for name, deployment in deployments.items():
        flow = entrypoint_flow(deployment["entrypoint"])
        params = set(inspect.signature(flow.fn).parameters)
        assert set(deployment.get("parameters") or {}) <= params, (name, deployment.get("parameters"), params)
        for schedule in deployment.get("schedules") or []:
            CronSchedule(cron=schedule["cron"], timezone=schedule.get("timezone"))  # raises if invalid

    launch = deployments["launch-campaign"]
    assert f"{entrypoint_flow(launch['entrypoint']).name}/{launch['name']}" == DEPLOYMENT_NAME
    step = config["pull"][0]["prefect.deployments.steps.set_working_directory"]
    assert "$METACENTRIC_HOME" in step["directory"]


def test_prefect_yaml_and_served_deployments_run_on_the_same_schedules() -> None:
    deployments = {d["name"]: d for d in prefect_yaml()["deployments"]}
    assert [s["cron"] for s in deployments["optimize-campaigns"]["schedules"]] == [served.OPTIMIZE_CRON]
    assert [s["cron"] for s in deployments["retrain-model"]["schedules"]] == [served.RETRAIN_CRON]
    assert {s.get("timezone", "UTC") for d in deployments.values() for s in d.get("schedules") or []} == {"UTC"}


def test_the_launch_trigger_matches_the_event_the_launcher_emits(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """`serve --launch-mode event` posts an event; prefect.yaml's trigger must match it and render the run's
    parameters from it."""
    sent: list[Any] = []
    real_client = httpx.AsyncClient

    def capture(request: httpx.Request) -> httpx.Response:
        sent.extend(json.loads(request.content))
        return httpx.Response(204)

    monkeypatch.setattr(httpx, "AsyncClient",
                        lambda **kw: real_client(transport=httpx.MockTransport(capture), **kw))
    launcher = Launcher(Store(f"sqlite:///{tmp_path / 'store.db'}"), mode="event")
    delivery = {"id": "d-1", "campaign_id": "120200000000000042", "kind": "launch"}
    with temporary_settings(updates={PREFECT_API_URL: "http://prefect.invalid/api"}):
        launcher.loop.run_until_complete(launcher._emit_event(delivery))
    launcher.loop.close()
    (event,) = sent

    launch = next(d for d in prefect_yaml()["deployments"] if d["name"] == "launch-campaign")
    (trigger,) = launch["triggers"]
    assert trigger["type"] == "event" and trigger.get("enabled", True)
    assert event["event"] == LAUNCH_EVENT and LAUNCH_EVENT in trigger["expect"]
    for label, pattern in trigger["match"].items():
        assert fnmatch.fnmatchcase(event["resource"][label], pattern), (label, pattern, event["resource"])
    rendered = {k: jinja2.Template(v).render(event=event) for k, v in trigger["parameters"].items()}
    assert rendered == {"campaign_id": "120200000000000042"}
    params = set(inspect.signature(entrypoint_flow(launch["entrypoint"]).fn).parameters)
    assert set(rendered) | set(launch.get("parameters") or {}) <= params


# the real thing (slow) -------------------------------------------------------------------------------
def _serve_pid(proc: subprocess.Popen[bytes]) -> int:
    """The `metacentric serve` process: the one started, or the shell's child when the command runs in `sh -c`."""
    def cmdline(pid: int) -> str:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()

    if "metacentric serve" in cmdline(proc.pid) and not cmdline(proc.pid).startswith("sh "):
        return proc.pid
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == proc.pid and "metacentric serve" in cmdline(int(stat.parent.name)):
                return int(stat.parent.name)
        except (OSError, IndexError, ValueError):
            continue
    raise AssertionError("no `metacentric serve` process found")


def _process_group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


@pytest.mark.scale
def test_the_start_command_serves_healthz_subscribes_to_meta_and_launches(tmp_path: Path) -> None:
    """railway.json's start command, on a free loopback port (0.0.0.0 replaced by 127.0.0.1), in sandbox mode:
    `metacentric serve` starts its sandbox and a Prefect server, answers /healthz, subscribes to the sandbox's
    Meta webhooks once it accepts connections, launches a campaign, and SIGTERM stops all of it."""
    command = railway()["deploy"]["startCommand"].replace("0.0.0.0", "127.0.0.1")
    argv = shlex.split(command)
    if Path(argv[0]).name not in ("sh", "bash", "dash"):
        argv = ["sh", "-c", command]  # $PORT needs a shell; a fixed start command brings its own
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "METACENTRIC_", "META_WEBHOOK_"))}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", PORT=str(port), PYTHONUNBUFFERED="1",
               METACENTRIC_MODE="sandbox", METACENTRIC_VAR_DIR=str(tmp_path / "var"),
               PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_LOGGING_LEVEL="WARNING")
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, f"serve exited ({proc.returncode}):\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no /healthz within 240 s:\n{log.read_text()[-3000:]}"
            try:
                health = httpx.get(f"{url}/healthz", timeout=2)
                if health.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        assert health.json() == {"status": "ok", "mode": "sandbox"}

        while "subscribed to Meta webhooks" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)
        sandbox_url = re.search(r"sandbox: (http://127\.0\.0\.1:\d+)", log.read_text())
        assert sandbox_url, log.read_text()[-3000:]
        subs = httpx.get(f"{sandbox_url[1]}/graph/v25.0/1000000000000001/subscriptions",
                         params={"access_token": "sandbox-token"}, timeout=10).json()
        assert [s["callback_url"] for s in subs["data"]] == [f"{url}/webhooks/meta"]

        created = httpx.post(f"{url}/campaigns/create-with-orchestration", timeout=60,
                             headers={"authorization": "Bearer sandbox-api-token"},
                             json={"name": "Nova Reyes - Midnight Static", "daily_budget": 120,
                                   "artist_name": "Nova Reyes", "song_name": "Midnight Static"})
        assert created.status_code == 200, created.text
        campaign_id = created.json()["campaign"]["id"]
        while (status := httpx.get(f"{url}/campaigns/{campaign_id}", timeout=10).json())["state"] not in (
                "COMPLETED", "FAILED"):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        assert status["state"] == "COMPLETED"
        assert len(status["flow_run_ids"]) == 1  # the API call and Meta's webhook (subscribed): one launch
        assert status["platforms"] and all(p["status"] == "published" for p in status["platforms"].values())

        os.kill(_serve_pid(proc), signal.SIGTERM)  # as `docker stop` does, to serve only: it stops the rest
        proc.wait(60)
        deadline = time.monotonic() + 30
        while _process_group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _process_group_alive(proc.pid), "serve left its Prefect server or served process running"
    finally:
        if _process_group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

