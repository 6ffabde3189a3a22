"""The work dialect's WebSocket events over a real WebSocket: every event with its data and
order, sessions worked by their agent, a slow client that stalls nobody, and keepalive pings."""

from __future__ import annotations

import json
import socket
import time

import pytest
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri

from tests.work_client import WORK_EVENTS, Listener, project, session, task

ECHO = {"name": "echo", "description": "Echoes", "model": "scripted/echo", "orchestration": {"pattern": "single"}}
BROKEN = {"name": "broken", "model": {"provider": "scripted", "model": "b", "script": [{"fail": "model on fire"}]}}
SLOW = {"name": "slow", "model": {"provider": "scripted", "model": "s", "script": [{"tokens": 40, "delay_ms": 50}]}}


@pytest.fixture
def server(podium):
    return podium([ECHO, BROKEN, SLOW])


@pytest.fixture
def listeners(server):
    both = [Listener(server.ws_url + "/"), Listener(server.ws_url + "/ws")]
    yield both
    for listener in both:
        listener.close()


def test_task_events_carry_the_task(server, listeners):
    http = server.http
    p = project(http)
    created = task(http, p["id"], "Implement login", priority="high")
    updated = http.patch(f"/api/tasks/{created['id']}", json={"status": "completed"}).json()
    http.delete(f"/api/tasks/{created['id']}")
    for listener in listeners:  # the same events, in the same order, at `/` and at `/ws`
        assert listener.take(3) == [("task:created", created), ("task:updated", updated),
                                    ("task:deleted", {"id": created["id"]})]


def test_session_created_with_two_tasks_announces_in_the_seeds_order(server, listeners):
    http = server.http
    p = project(http)
    t1, t2 = task(http, p["id"], "one"), task(http, p["id"], "two")
    for listener in listeners:
        listener.take(2)
    s = session(http, projectId=p["id"], taskIds=[t1["id"], t2["id"]], name="Login", agentId="echo")
    after1, after2 = (http.get(f"/api/tasks/{t['id']}").json() for t in (t1, t2))
    assert after1["sessionIds"] == [s["id"]] and after1["sessionCount"] == 1
    expected = [
        ("session:created", s),
        ("task:updated", after1), ("task:updated", after2),
        ("session:task_added", {"sessionId": s["id"], "taskId": t1["id"]}),
        ("session:task_added", {"sessionId": s["id"], "taskId": t2["id"]}),
        ("task:session_added", {"taskId": t1["id"], "sessionId": s["id"]}),
        ("task:session_added", {"taskId": t2["id"], "sessionId": s["id"]}),
    ]
    for listener in listeners:
        assert listener.take(7) == expected


def test_relation_and_session_events(server, listeners):
    http = server.http
    p = project(http)
    t1, t2 = task(http, p["id"], "one"), task(http, p["id"], "two")
    s = session(http, taskIds=[t1["id"]])
    [listener.take(2 + 4) for listener in listeners]

    linked = http.post(f"/api/sessions/{s['id']}/tasks/{t2['id']}").json()
    t2_linked = http.get(f"/api/tasks/{t2['id']}").json()
    unlinked = http.delete(f"/api/sessions/{s['id']}/tasks/{t2['id']}").json()
    t2_unlinked = http.get(f"/api/tasks/{t2['id']}").json()
    patched = http.patch(f"/api/sessions/{s['id']}", json={"status": "completed"}).json()
    http.delete(f"/api/sessions/{s['id']}")
    t1_after = http.get(f"/api/tasks/{t1['id']}").json()
    pair = {"sessionId": s["id"], "taskId": t2["id"]}
    expected = [
        ("session:updated", linked), ("task:updated", t2_linked),
        ("session:task_added", pair), ("task:session_added", pair),
        ("session:updated", unlinked), ("task:updated", t2_unlinked),
        ("session:task_removed", pair), ("task:session_removed", pair),
        ("session:updated", patched),
        ("session:deleted", {"id": s["id"]}), ("task:updated", t1_after),
        ("session:task_removed", {"sessionId": s["id"], "taskId": t1["id"]}),
        ("task:session_removed", {"taskId": t1["id"], "sessionId": s["id"]}),
    ]
    for listener in listeners:
        assert listener.take(len(expected)) == expected
    assert t1_after["sessionIds"] == [] and t2_unlinked["sessionCount"] == 0


def test_deleting_a_task_updates_every_session_that_had_it(server, listeners):
    http = server.http
    p = project(http)
    t = task(http, p["id"])
    s1, s2 = session(http, taskIds=[t["id"]]), session(http, taskIds=[t["id"]])
    [listener.take(1 + 4 + 4) for listener in listeners]
    http.delete(f"/api/tasks/{t['id']}")
    s1_after, s2_after = (http.get(f"/api/sessions/{s['id']}").json() for s in (s1, s2))
    assert s1_after["taskIds"] == [] and s1_after["env"]["MAESTRO_TASK_IDS"] == ""
    for listener in listeners:
        assert listener.take(3) == [("task:deleted", {"id": t["id"]}),
                                    ("session:updated", s1_after), ("session:updated", s2_after)]


def test_subtask_changes_are_task_updates(server, listeners):
    http = server.http
    t = task(http, project(http)["id"])
    sub = http.post(f"/api/tasks/{t['id']}/subtasks", json={"title": "part"}).json()
    with_sub = http.get(f"/api/tasks/{t['id']}").json()
    http.patch(f"/api/tasks/{t['id']}/subtasks/{sub['id']}", json={"status": "completed"})
    done = http.get(f"/api/tasks/{t['id']}").json()
    http.delete(f"/api/tasks/{t['id']}/subtasks/{sub['id']}")
    emptied = http.get(f"/api/tasks/{t['id']}").json()
    assert with_sub["subtasks"] == [sub] and done["subtasks"][0]["status"] == "completed"
    for listener in listeners:
        assert listener.take(4) == [("task:created", t), ("task:updated", with_sub),
                                    ("task:updated", done), ("task:updated", emptied)]


def test_message_append_and_nickname_are_session_updates(server, listeners):
    http = server.http
    s = session(http, name="notes", agentId="echo")
    http.post(f"/api/sessions/{s['id']}/messages", json={"content": "hello"})
    touched = http.get(f"/api/sessions/{s['id']}").json()
    http.post("/api/sessions/backfill-nicknames")
    named = http.get(f"/api/sessions/{s['id']}").json()
    assert named["nickname"]
    for listener in listeners:
        assert listener.take(3) == [("session:created", s), ("session:updated", touched),
                                    ("session:updated", named)]


def _statuses(events):
    return [(name, data["id"], data["status"]) for name, data in events if name.endswith(":updated")]


def test_run_works_the_tasks_in_order_live(server, listeners):
    http = server.http
    p = project(http)
    t1 = task(http, p["id"], "First", prompt="say alpha")
    t2 = task(http, p["id"], "Second", description="then beta")
    s = session(http, projectId=p["id"], taskIds=[t1["id"], t2["id"]], agentId="echo")
    listener = listeners[0]
    listener.take(2 + 7)
    response = http.post(f"/api/sessions/{s['id']}/run")
    assert response.status_code == 202 and response.json()["status"] == "running"
    events = listener.until("session:updated", id=s["id"], status="completed")
    assert _statuses(events) == [
        ("session:updated", s["id"], "running"),
        ("task:updated", t1["id"], "in_progress"), ("task:updated", t1["id"], "completed"),
        ("task:updated", t2["id"], "in_progress"), ("task:updated", t2["id"], "completed"),
        ("session:updated", s["id"], "completed"),
    ]
    assert events[-1][1]["completedAt"] is not None
    messages = http.get(f"/api/sessions/{s['id']}/messages").json()
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "say alpha"), ("assistant", "say alpha"),
        ("user", "Second\n\nthen beta"), ("assistant", "Second\n\nthen beta")]
    assert {t["status"] for t in http.get("/api/tasks").json()} == {"completed"}
    assert http.post(f"/api/sessions/{s['id']}/run").status_code == 202  # nothing left: completes again
    assert listener.until("session:updated", id=s["id"], status="completed")


def test_a_failing_run_blocks_the_task_and_fails_the_session(server, listeners):
    http = server.http
    p = project(http)
    t1, t2 = task(http, p["id"], "doomed"), task(http, p["id"], "never reached")
    s = session(http, taskIds=[t1["id"], t2["id"]], agentId="broken")
    listener = listeners[1]
    listener.take(2 + 7)
    assert http.post(f"/api/sessions/{s['id']}/run").status_code == 202
    events = listener.until("session:updated", id=s["id"], status="failed")
    assert _statuses(events) == [
        ("session:updated", s["id"], "running"),
        ("task:updated", t1["id"], "in_progress"), ("task:updated", t1["id"], "blocked"),
        ("session:updated", s["id"], "failed"),
    ]
    blocked = http.get(f"/api/tasks/{t1['id']}").json()
    assert blocked["status"] == "blocked" and "model on fire" in blocked["error"]
    assert http.get(f"/api/tasks/{t2['id']}").json()["status"] == "pending"
    assert http.get(f"/api/sessions/{s['id']}").json()["status"] == "failed"
    reopened = http.patch(f"/api/tasks/{t1['id']}", json={"status": "pending"}).json()
    assert (reopened["status"], reopened["error"]) == ("pending", None)


def test_run_refusals(server):
    http = server.http
    p = project(http)
    t = task(http, p["id"])
    empty = session(http, agentId="echo")
    foreign = session(http, taskIds=[t["id"]], agentId="claude")
    slow = session(http, taskIds=[t["id"]], agentId="slow")
    assert "no tasks" in http.post(f"/api/sessions/{empty['id']}/run").json()["error"]
    response = http.post(f"/api/sessions/{foreign['id']}/run")
    assert response.status_code == 400 and "claude" in response.json()["error"]
    assert http.post("/api/sessions/sess_nope/run").status_code == 404
    assert http.post(f"/api/sessions/{slow['id']}/run").status_code == 202
    again = http.post(f"/api/sessions/{slow['id']}/run")  # the slow agent takes two seconds
    assert again.status_code == 409 and set(again.json()) == {"error"}


def test_a_slow_client_is_cut_off_without_stalling_the_others(podium):
    server = podium([ECHO], config={"events": {"queue_limit": 20}})
    http = server.http
    # A client that never reads, with a small receive buffer so it backs up quickly.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small window
    sock.connect(("127.0.0.1", server.port))
    # No compression for it: the repetitive events below would otherwise shrink to nothing.
    slow = Listener(server.ws_url + "/ws", sock=sock, max_queue=4, compression=None).ws
    fast = [Listener(server.ws_url + "/"), Listener(server.ws_url + "/ws")]
    p = project(http)
    big = "x" * 50_000  # 7.5 MB in all: more than the socket buffers hold
    count = 150
    created = [task(http, p["id"], f"task {i}", description=big)["id"] for i in range(count)]
    for listener in fast:  # every other client still gets everything, in order
        assert [data["id"] for _name, data in listener.take(count)] == created
    received = 0
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            if json.loads(slow.recv(timeout=30))["event"] in WORK_EVENTS:
                received += 1
    assert received < count
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert "too slow" in closed.value.rcvd.reason
    assert server.core.bus.subscribers == 2  # the slow client's queue is gone
    for listener in fast:
        listener.close()


def test_idle_connections_are_pinged_and_silent_peers_dropped(podium):
    server = podium([ECHO], config={"events": {"ping_interval": 0.2, "ping_timeout": 0.5}})
    answering = Listener(server.ws_url + "/")  # websockets answers pings by itself
    # A raw client that reads every frame but never answers a ping.
    protocol = ClientProtocol(parse_uri(server.ws_url + "/ws"))
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    protocol.send_request(protocol.connect())
    sock.sendall(b"".join(protocol.data_to_send()))
    frames = []
    while protocol.close_rcvd is None:
        data = sock.recv(65536)
        if not data:
            break
        protocol.receive_data(data)
        frames += [e.opcode for e in protocol.events_received() if isinstance(e, Frame)]
    sock.close()
    assert Opcode.PING in frames
    assert protocol.close_rcvd is not None and protocol.close_rcvd.code == 1011
    t = task(server.http, project(server.http)["id"])
    assert answering.take(1) == [("task:created", t)]  # pinged too, answered, still connected
    answering.close()


def test_servers_sharing_a_redis_bus_tell_every_client_every_change(podium, redis_server):
    """Two servers on one database and one Redis (`events.bus_url`): a client of either hears
    the changes made through both, each once and in the order each server made them."""
    from tests.conftest import Podium

    config = {"events": {"bus_url": redis_server.url}}
    first = podium([ECHO], config)
    second = Podium(first.root.parent / "second", [ECHO], {**config, "database_url": first.database_url}).start()
    listeners = [Listener(first.ws_url + "/ws"), Listener(second.ws_url + "/ws")]
    try:
        p = project(first.http)
        made_here = task(first.http, p["id"], "Through the first")
        made_there = task(second.http, p["id"], "Through the second")
        done = second.http.patch(f"/api/tasks/{made_here['id']}", json={"status": "completed"}).json()
        for listener in listeners:
            events = listener.take(3)
            assert sorted(events[:2], key=lambda e: e[1]["title"]) == [
                ("task:created", made_here), ("task:created", made_there)]  # one each, either first
            assert events[2] == ("task:updated", done)
        ones, others = (server.http.get("/api/stats/capacity").json()["event_bus"] for server in (first, second))
        assert (ones["received"], others["received"]) == (others["published"], ones["published"])
        assert ones["dropped"] == others["dropped"] == 0 and ones["kind"] == "redis" and ones["reachable"]
    finally:
        for listener in listeners:
            listener.close()
        second.stop()


def test_the_bus_subscribes_again_when_its_redis_comes_back(podium, redis_server):
    """Redis restarts: while it is away each server's clients hear its own changes; once it is
    back, both servers have subscribed again and a change through one reaches the other's."""
    from tests.conftest import Podium

    config = {"events": {"bus_url": redis_server.url}}
    first = podium([ECHO], config)
    second = Podium(first.root.parent / "second", [ECHO], {**config, "database_url": first.database_url}).start()
    there = Listener(second.ws_url + "/ws")
    try:
        p = project(first.http)
        redis_server.stop()
        alone = task(second.http, p["id"], "While Redis is away")
        assert there.take(1) == [("task:created", alone)]
        redis_server.start()
        deadline = time.monotonic() + 30
        while min(first.core.bus.subscribed, second.core.bus.subscribed) < 2:
            assert time.monotonic() < deadline, "a server did not subscribe again"
            time.sleep(0.05)
        back = task(first.http, p["id"], "With Redis back")
        assert there.take(1) == [("task:created", back)]
    finally:
        there.close()
        second.stop()


def test_a_redis_bus_that_cannot_be_reached_leaves_each_server_its_own_events(podium):
    """With Redis away the server still starts and serves; its clients hear its own changes."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = podium([ECHO], {"events": {"bus_url": f"redis://127.0.0.1:{port}"}})
    listener = Listener(server.ws_url + "/ws")
    try:
        p = project(server.http)
        created = task(server.http, p["id"], "Alone")
        assert listener.take(1) == [("task:created", created)]
        deadline = time.monotonic() + 30
        while server.core.bus.dropped < 1:  # it could not be sent to the others (after the client's retries)
            assert time.monotonic() < deadline
            time.sleep(0.05)
        shown = server.http.get("/api/stats/capacity").json()["event_bus"]
        assert shown["reachable"] is False and shown["subscribed"] == 0 and shown["dropped"] >= 1
    finally:
        listener.close()


def test_an_event_that_cannot_be_encoded_still_reaches_this_servers_clients():
    """The publisher's change stands: its event reaches local subscribers, and only the copy
    for the other servers is dropped (and counted)."""
    import asyncio

    from podium.bus import RedisBus

    async def scenario() -> tuple[str, int]:
        bus = RedisBus("redis://127.0.0.1:1")  # never started: nothing is sent anywhere
        subscription = bus.subscribe()
        bus.publish("odd:event", {"value": {1, 2}})  # a set: not JSON
        return (await subscription.get()).name, bus.dropped

    assert asyncio.run(scenario()) == ("odd:event", 1)
