"""Drives the reference agent, z4j-bare, for the side-by-side benchmarks.

Started by bench/compare/run.ts (and the interop test) as its own process. Connection settings come
from the environment (Z4J_BRAIN_URL, Z4J_TOKEN, Z4J_PROJECT_ID, Z4J_HMAC_SECRET, Z4J_HOME). Commands
arrive on stdin and answers leave on stdout, one JSON object per line, the same line protocol as
bench/compare/ourAgent.ts, so the harness treats both agents alike.

Events go through ``AgentRuntime.record_event`` after ``RedactionEngine.scrub``, which is what the
z4j engine adapters (z4j-celery, z4j-rq) do for every lifecycle event.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime

from z4j_bare import install_agent
from z4j_core.models.event import Event, EventKind
from z4j_core.redaction.engine import RedactionEngine


class BenchEngine:
    """An engine with no tasks and no commands: events come from the driver itself."""

    name = "bench"

    def __init__(self) -> None:
        self.redaction = RedactionEngine()

    def capabilities(self) -> set[str]:
        return set()

    async def discover_tasks(self, hints=None):  # noqa: ANN001, ARG002
        return []

    async def list_queues(self):
        return []

    async def list_workers(self):
        return []

    async def get_task(self, task_id):  # noqa: ANN001, ARG002
        return None


def answer(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def memory() -> dict:
    fields = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmHWM", "VmRSS"):
                fields[name] = int(value.split()[0]) * 1024
    return {"peakRssBytes": fields.get("VmHWM", 0), "rssBytes": fields.get("VmRSS", 0)}


def event_data(sequence: int) -> dict:
    return {
        "queue": "emails",
        "name": "send-welcome-email",
        "attempt": 1,
        "args": [sequence, "user@example.com"],
        "kwargs": {"locale": "fr-FR", "template": "welcome"},
        "worker": "worker-1",
        "runtime_ms": 12,
        "result": {"ok": True, "message_id": "m-" + str(sequence)},
        "note": "déjà envoyé",
        "seq": sequence,
        "emitted_us": time.time_ns() // 1000,
    }


def main() -> None:
    engine = BenchEngine()
    runtime = install_agent(
        engines=[engine],
        brain_url=os.environ["Z4J_BRAIN_URL"],
        token=os.environ["Z4J_TOKEN"],
        project_id=os.environ["Z4J_PROJECT_ID"],
        hmac_secret=os.environ["Z4J_HMAC_SECRET"],
        agent_name="bench-bare",
    )
    project_id = uuid.UUID(os.environ["Z4J_PROJECT_ID"])
    agent_id = uuid.uuid4()
    sequence = 0

    def emit() -> None:
        nonlocal sequence
        sequence += 1
        runtime.record_event(
            Event(
                id=uuid.uuid4(),
                project_id=project_id,
                agent_id=agent_id,
                engine="bench",
                task_id=f"job-{sequence}",
                kind=EventKind.TASK_SUCCEEDED,
                occurred_at=datetime.now(UTC),
                data=engine.redaction.scrub(event_data(sequence)),
            )
        )

    def wait_empty(deadline_s: float) -> bool:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if runtime.buffer_size() == 0:
                return True
            time.sleep(0.002)
        return False

    answer({"op": "started", "pid": os.getpid()})
    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        if op == "burst":
            started = time.perf_counter()
            for _ in range(command["count"]):
                emit()
            emitted = time.perf_counter()
            drained = wait_empty(command.get("timeoutSeconds", 600))
            answer(
                {
                    "op": op,
                    "emitSeconds": emitted - started,
                    "totalSeconds": time.perf_counter() - started,
                    "drained": drained,
                }
            )
        elif op == "steady":
            rate = command["rate"]
            count = int(rate * command["seconds"])
            started = time.perf_counter()
            for index in range(count):
                due = started + index / rate
                pause = due - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                emit()
            emitted = time.perf_counter()
            drained = wait_empty(command.get("timeoutSeconds", 600))
            answer({"op": op, "emitSeconds": emitted - started, "drainSeconds": time.perf_counter() - emitted, "drained": drained})
        elif op == "depth":
            answer({"op": op, "depth": runtime.buffer_size()})
        elif op == "memory":
            answer({"op": op, **memory()})
        elif op == "stop":
            runtime.stop(timeout=5.0)
            answer({"op": op})
            return


if __name__ == "__main__":
    main()
