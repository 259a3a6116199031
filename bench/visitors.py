"""Part 6b: concurrent visitors with lightweight clients, to measure the server's share.

Part 6's concurrent visitors are Chromium tabs on the same two cores as the server, so even a page with no data
slows almost tenfold for ten tabs: the browsers, not the server. Here each visitor is a websocket client that
speaks Streamlit's own protocol (a BackMsg asking for a page run, then the ForwardMsgs until "script finished"),
which costs the machine next to nothing. A visitor's time is from connecting to the server having sent the whole
page: what the server adds to a browser's own drawing time.

Each visitor opens the Place page of a different ICB that nobody has opened yet on that server (a first visit
for that place, the slow case); "one visitor" is the median of three such visits one after another. It is
measured with one dashboard process, and with two behind a load balancer (each visitor sent to the next process
in turn, as a load balancer with sticky sessions does), as docs/deployment.md runs several."""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

from bench.browser import ICBS
from bench.common import cpu_seconds
from scripts import screenshots as shots
from tracker.config import setting

PLACE_QUERY = "area={code}&outcome=life-expectancy&sex=Male"
ONE_VISITOR = 3


def visit(base: str, page: str, query: str, timeout: float = 600) -> float:
    """Seconds from connecting to the server's "script finished" for one new session's run of `page`."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.sync.client import connect

    started = time.perf_counter()
    # "streamlit" is the subprotocol the frontend asks for; the page and its query are what its URL would say
    with connect(base.replace("http", "ws", 1) + "/_stcore/stream", subprotocols=["streamlit"], max_size=None,
                 open_timeout=timeout) as ws:
        ask = BackMsg()
        ask.rerun_script.page_name = page
        ask.rerun_script.query_string = query
        ws.send(ask.SerializeToString())
        while True:
            msg = ForwardMsg()
            msg.ParseFromString(ws.recv(timeout=timeout))
            if msg.WhichOneof("type") != "script_finished":
                continue
            status = ForwardMsg.ScriptFinishedStatus.Name(msg.script_finished)
            if status == "FINISHED_SUCCESSFULLY":
                return time.perf_counter() - started
            if status != "FINISHED_EARLY_FOR_RERUN":  # a rerun asked by the page: its next run follows
                raise RuntimeError(f"the page's script ended with {status}")


def _at_once(bases: list[str], codes: list[str], pids: list[int]) -> dict:
    """Every code's Place page at the same moment, visitor i on server i mod len(bases)."""
    cpu = sum(cpu_seconds(pid) for pid in pids)
    with ThreadPoolExecutor(max_workers=len(codes)) as pool:
        times = list(pool.map(lambda ic: visit(bases[ic[0] % len(bases)], "place", PLACE_QUERY.format(code=ic[1])),
                              enumerate(codes)))
    return {"visitors": len(codes), "median_seconds": round(statistics.median(times), 3),
            "slowest_seconds": round(max(times), 3),
            "server_cpu_seconds": round(sum(cpu_seconds(pid) for pid in pids) - cpu, 2)}


def _measure_with(n_servers: int, concurrency: tuple[int, ...]) -> list[dict]:
    with ExitStack() as stack:
        servers = [stack.enter_context(shots.serve_process()) for _ in range(n_servers)]
        bases, pids = [b for b, _ in servers], [p.pid for _, p in servers]
        for base in bases:  # each process reads the saved analysis once, as after any start
            visit(base, "place", PLACE_QUERY.format(code=ICBS[-1]))
        unused = list(ICBS[:-1])
        # one visitor: the median of ONE_VISITOR visits one after another (one first visit varies by a second)
        alone = [_at_once(bases, [code], pids) for code in unused[:ONE_VISITOR]]
        unused = unused[ONE_VISITOR:]
        single = statistics.median(a["median_seconds"] for a in alone)
        rows = [{"servers": n_servers, "visitors": 1, "median_seconds": round(single, 3),
                 "slowest_seconds": max(a["slowest_seconds"] for a in alone),
                 "server_cpu_seconds": round(statistics.median(a["server_cpu_seconds"] for a in alone), 2)}]
        for n in concurrency:
            codes, unused = unused[:n], unused[n:]  # places no visitor has opened on these servers
            rows.append({"servers": n_servers, **_at_once(bases, codes, pids)})
    for row in rows:
        row["ratio_to_one"] = round(row["median_seconds"] / single, 2)
    return rows


def measure(concurrency: tuple[int, ...] = (5, 10), servers: tuple[int, ...] = (1, 2)) -> dict:
    """Child task (TRACKER_DATABASE_URL points at the prepared snapshot database; TRACKER_RENDER_SLOTS, if set,
    the pages each process draws at once)."""
    if ONE_VISITOR + sum(concurrency) >= len(ICBS):
        raise ValueError(f"at most {len(ICBS) - 1} different ICBs to visit")
    rows = [row for n in servers for row in _measure_with(n, tuple(concurrency))]
    return {"client": "websocket (Streamlit's protocol, no browser)", "page": "place",
            "render_slots": setting("TRACKER_RENDER_SLOTS"), "concurrent": rows}
