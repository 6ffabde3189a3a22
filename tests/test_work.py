"""The work dialect (seed 2) over real HTTP: projects, tasks, subtasks, sessions, the
task-session relation, the seed 5 session routes, and a restart."""

from __future__ import annotations

import time

from tests.work_client import project, session, task

ECHO = {"name": "echo", "description": "Echoes", "model": "scripted/echo", "orchestration": {"pattern": "single"}}


def assert_error(response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"]
    return body["error"]


def test_projects_create_list_get_and_errors(podium):
    http = podium([ECHO]).http
    before = int(time.time() * 1000)
    created = project(http, "My Project")
    assert created["id"].startswith("proj_")
    assert created == {"id": created["id"], "name": "My Project", "basePath": None, "createdAt": created["createdAt"]}
    assert before <= created["createdAt"] <= int(time.time() * 1000)
    other = http.post("/api/projects", json={"name": "Two", "basePath": "/srv/two"}).json()
    assert other["basePath"] == "/srv/two"
    assert http.get("/api/projects").json() == [created, other]
    assert http.get(f"/api/projects/{created['id']}").json() == created
    assert_error(http.get("/api/projects/proj_nope"), 404)
    assert_error(http.post("/api/projects", json={}), 400)
    assert_error(http.post("/api/projects", json={"name": 5}), 400)
    assert_error(http.post("/api/projects", content=b"{oops", headers={"content-type": "application/json"}), 400)
    assert len(http.get("/api/projects").json()) == 2


def test_task_create_read_filter_update_delete(podium):
    http = podium([ECHO]).http
    p1, p2 = project(http, "one"), project(http, "two")
    t1 = task(http, p1["id"], "Implement login endpoint", description="REST login", prompt="Create it",
              priority="high")
    assert t1["id"].startswith("task_")
    assert t1 == {"id": t1["id"], "projectId": p1["id"], "title": "Implement login endpoint",
                  "description": "REST login", "prompt": "Create it", "status": "pending", "priority": "high",
                  "sessionIds": [], "sessionCount": 0, "subtasks": [], "createdAt": t1["createdAt"],
                  "updatedAt": t1["createdAt"], "completedAt": None, "error": None}
    t2 = task(http, p2["id"], "Other")
    assert (t2["description"], t2["prompt"], t2["priority"]) == ("", "", "medium")
    assert http.get(f"/api/tasks/{t1['id']}").json() == t1
    assert [t["id"] for t in http.get("/api/tasks").json()] == [t1["id"], t2["id"]]
    assert [t["id"] for t in http.get("/api/tasks", params={"projectId": p2["id"]}).json()] == [t2["id"]]
    assert http.get("/api/tasks", params={"projectId": "proj_none"}).json() == []

    done = http.patch(f"/api/tasks/{t1['id']}", json={"status": "completed"}).json()
    assert done["status"] == "completed" and done["completedAt"] >= t1["createdAt"]
    assert done["updatedAt"] >= t1["updatedAt"] and done["title"] == t1["title"]
    given = http.patch(f"/api/tasks/{t1['id']}", json={"completedAt": 1234567900}).json()
    assert given["completedAt"] == 1234567900
    reopened = http.patch(f"/api/tasks/{t1['id']}", json={"status": "in_progress", "title": "Renamed"}).json()
    assert (reopened["status"], reopened["completedAt"], reopened["title"]) == ("in_progress", None, "Renamed")

    assert http.delete(f"/api/tasks/{t2['id']}").json() == {"success": True}
    assert_error(http.get(f"/api/tasks/{t2['id']}"), 404)
    assert_error(http.delete(f"/api/tasks/{t2['id']}"), 404)


def test_task_validation_is_400_and_writes_nothing(podium):
    http = podium([ECHO]).http
    p = project(http)
    t = task(http, p["id"])
    bad_creates = [
        {"title": "no project"},
        {"projectId": p["id"]},
        {"projectId": p["id"], "title": ""},
        {"projectId": p["id"], "title": 7},
        {"projectId": p["id"], "title": "x", "priority": "urgent"},
        {"projectId": p["id"], "title": "x", "status": "done"},
        {"projectId": "proj_missing", "title": "x"},
    ]
    for body in bad_creates:
        assert_error(http.post("/api/tasks", json=body), 400)
    assert [x["id"] for x in http.get("/api/tasks").json()] == [t["id"]]
    for body in ({"status": "finished"}, {"priority": "critical"}, {"title": None}, {"status": 3},
                 {"completedAt": "yesterday"}):
        assert_error(http.patch(f"/api/tasks/{t['id']}", json=body), 400)
    assert http.get(f"/api/tasks/{t['id']}").json() == t
    assert_error(http.patch("/api/tasks/task_missing", json={"status": "completed"}), 404)


def test_subtasks_add_update_delete(podium):
    http = podium([ECHO]).http
    t = task(http, project(http)["id"])
    first = http.post(f"/api/tasks/{t['id']}/subtasks", json={"title": "Schema"})
    assert first.status_code == 201
    sub = first.json()
    assert sub["id"].startswith("sub_")
    assert sub == {"id": sub["id"], "taskId": t["id"], "title": "Schema", "status": "pending",
                   "createdAt": sub["createdAt"], "completedAt": None}
    second = http.post(f"/api/tasks/{t['id']}/subtasks", json={"title": "Handler"}).json()
    assert [s["title"] for s in http.get(f"/api/tasks/{t['id']}").json()["subtasks"]] == ["Schema", "Handler"]
    done = http.patch(f"/api/tasks/{t['id']}/subtasks/{sub['id']}", json={"status": "completed"}).json()
    assert done["status"] == "completed" and done["completedAt"] is not None
    assert http.delete(f"/api/tasks/{t['id']}/subtasks/{second['id']}").json() == {"success": True}
    assert http.get(f"/api/tasks/{t['id']}").json()["subtasks"] == [done]
    assert_error(http.post(f"/api/tasks/{t['id']}/subtasks", json={"title": "x", "status": "blocked"}), 400)
    assert_error(http.post("/api/tasks/task_nope/subtasks", json={"title": "x"}), 404)
    assert_error(http.patch(f"/api/tasks/{t['id']}/subtasks/sub_nope", json={"status": "completed"}), 404)
    assert_error(http.delete(f"/api/tasks/{t['id']}/subtasks/{second['id']}"), 404)


def test_session_create_shape_env_and_relation(podium):
    server = podium([ECHO])
    http = server.http
    p = project(http)
    t1, t2 = task(http, p["id"], "one"), task(http, p["id"], "two")
    s = session(http, id="sess_task_abc_1", projectId=p["id"], taskIds=[t1["id"], t2["id"]],
                name="Implement login", agentId="claude")
    assert s == {
        "id": "sess_task_abc_1", "projectId": p["id"], "taskIds": [t1["id"], t2["id"]], "name": "Implement login",
        "agentId": "claude", "nickname": None, "status": "running", "startedAt": s["startedAt"],
        "lastActivity": s["startedAt"], "completedAt": None,
        "env": {"MAESTRO_PROJECT_ID": p["id"], "MAESTRO_TASK_IDS": f"{t1['id']},{t2['id']}",
                "MAESTRO_SESSION_ID": "sess_task_abc_1", "MAESTRO_API_URL": f"{server.url}/api"},
    }
    generated = session(http, projectId=p["id"], taskIds=[t2["id"]], name="second")
    assert generated["id"].startswith("sess_")
    assert http.get(f"/api/tasks/{t2['id']}").json()["sessionIds"] == ["sess_task_abc_1", generated["id"]]
    assert http.get(f"/api/tasks/{t2['id']}").json()["sessionCount"] == 2
    assert http.get(f"/api/sessions/{s['id']}").json() == s
    assert [x["id"] for x in http.get("/api/sessions", params={"taskId": t1["id"]}).json()] == [s["id"]]
    assert [x["id"] for x in http.get("/api/sessions", params={"taskId": t2["id"]}).json()] == [s["id"], generated["id"]]

    t3 = task(http, p["id"], "three")
    linked = http.post(f"/api/sessions/{s['id']}/tasks/{t3['id']}")
    assert linked.status_code == 200
    assert linked.json()["taskIds"] == [t1["id"], t2["id"], t3["id"]]
    assert linked.json()["env"]["MAESTRO_TASK_IDS"] == ",".join([t1["id"], t2["id"], t3["id"]])
    assert http.get(f"/api/tasks/{t3['id']}").json()["sessionIds"] == [s["id"]]
    assert_error(http.post(f"/api/sessions/{s['id']}/tasks/{t3['id']}"), 409)
    assert_error(http.post(f"/api/sessions/{s['id']}/tasks/task_nope"), 404)
    assert_error(http.post(f"/api/sessions/sess_nope/tasks/{t3['id']}"), 404)

    unlinked = http.delete(f"/api/sessions/{s['id']}/tasks/{t1['id']}")
    assert unlinked.status_code == 200 and unlinked.json()["taskIds"] == [t2["id"], t3["id"]]
    assert http.get(f"/api/tasks/{t1['id']}").json()["sessionIds"] == []
    assert_error(http.delete(f"/api/sessions/{s['id']}/tasks/{t1['id']}"), 404)
    assert_error(http.delete(f"/api/sessions/sess_nope/tasks/{t1['id']}"), 404)
    relinked = http.post(f"/api/sessions/{s['id']}/tasks/{t1['id']}").json()
    assert relinked["taskIds"] == [t2["id"], t3["id"], t1["id"]]


def test_session_validation_conflicts_and_nothing_half_written(podium):
    http = podium([ECHO]).http
    p = project(http)
    t = task(http, p["id"])
    error = assert_error(http.post("/api/sessions", json={"id": "sess_x", "taskIds": [t["id"], "task_ghost"]}), 400)
    assert "task_ghost" in error
    assert_error(http.get("/api/sessions/sess_x"), 404)
    assert http.get(f"/api/tasks/{t['id']}").json()["sessionIds"] == []
    for body in ({"taskIds": "task_1"}, {"taskIds": [1]}, {"status": "paused"}, {"name": 3},
                 {"projectId": "proj_ghost"}, {"taskIds": [t["id"], t["id"]]}):
        assert_error(http.post("/api/sessions", json=body), 400)
    assert http.get("/api/sessions").json() == []
    session(http, id="sess_dup", taskIds=[t["id"]])
    assert_error(http.post("/api/sessions", json={"id": "sess_dup"}), 409)
    assert http.get(f"/api/tasks/{t['id']}").json()["sessionIds"] == ["sess_dup"]
    for body in ({"status": "paused"}, {"status": None}, {"completedAt": "soon"}, {"name": None}):
        assert_error(http.patch("/api/sessions/sess_dup", json=body), 400)
    assert_error(http.patch("/api/sessions/sess_nope", json={"status": "completed"}), 404)
    assert_error(http.get("/api/sessions/sess_nope"), 404)
    assert_error(http.delete("/api/sessions/sess_nope"), 404)


def test_session_update_and_deletes_keep_both_sides_in_step(podium):
    http = podium([ECHO]).http
    p = project(http)
    t1, t2 = task(http, p["id"], "one"), task(http, p["id"], "two")
    s1 = session(http, taskIds=[t1["id"], t2["id"]])
    s2 = session(http, taskIds=[t1["id"]])
    done = http.patch(f"/api/sessions/{s1['id']}", json={"status": "completed"}).json()
    assert done["status"] == "completed" and done["completedAt"] is not None
    assert done["taskIds"] == [t1["id"], t2["id"]]
    explicit = http.patch(f"/api/sessions/{s1['id']}", json={"status": "failed", "completedAt": 1234567900}).json()
    assert (explicit["status"], explicit["completedAt"]) == ("failed", 1234567900)

    assert http.delete(f"/api/tasks/{t1['id']}").json() == {"success": True}
    assert http.get(f"/api/sessions/{s1['id']}").json()["taskIds"] == [t2["id"]]
    assert http.get(f"/api/sessions/{s2['id']}").json()["taskIds"] == []

    assert http.delete(f"/api/sessions/{s1['id']}").json() == {"success": True}
    assert_error(http.get(f"/api/sessions/{s1['id']}"), 404)
    assert http.get(f"/api/tasks/{t2['id']}").json()["sessionIds"] == []
    assert http.get(f"/api/tasks/{t2['id']}").json()["sessionCount"] == 0


def test_chat_in_a_work_session_lands_in_its_messages(podium):
    http = podium([ECHO]).http
    p = project(http)
    t = task(http, p["id"])
    s = session(http, projectId=p["id"], taskIds=[t["id"]], name="Login")
    answer = http.post("/chat", json={"message": "hello work", "sessionId": s["id"], "stream": False})
    assert answer.status_code == 200 and answer.json()["response"] == "hello work"
    messages = http.get(f"/api/sessions/{s['id']}/messages").json()
    assert [(m["role"], m["content"], m["agent"]) for m in messages] == [
        ("user", "hello work", "echo"), ("assistant", "hello work", "echo")]
    assert all(m["sessionId"] == s["id"] and isinstance(m["createdAt"], int) for m in messages)
    after = http.get(f"/api/sessions/{s['id']}").json()
    assert (after["taskIds"], after["projectId"], after["name"]) == ([t["id"]], p["id"], "Login")
    assert after["agentId"] == "echo" and after["lastActivity"] >= s["lastActivity"]


def test_chat_only_session_reads_back_through_the_work_routes(podium):
    http = podium([ECHO]).http
    http.post("/chat", json={"message": "hi", "sessionId": "plain-chat", "stream": False})
    s = http.get("/api/sessions/plain-chat").json()
    assert s["projectId"] == "" and s["name"] == "" and s["taskIds"] == []
    assert s["agentId"] == "echo" and s["status"] == "running"
    assert s["env"]["MAESTRO_SESSION_ID"] == "plain-chat" and s["env"]["MAESTRO_PROJECT_ID"] == ""
    assert [x["id"] for x in http.get("/api/sessions").json()] == ["plain-chat"]


def test_append_and_read_session_messages(podium):
    http = podium([ECHO]).http
    s = session(http, name="notes")
    first = http.post(f"/api/sessions/{s['id']}/messages", json={"content": "remember the milk"})
    assert first.status_code == 201
    assert first.json()["role"] == "user" and first.json()["content"] == "remember the milk"
    http.post(f"/api/sessions/{s['id']}/messages", json={"role": "assistant", "content": "noted", "agent": "echo"})
    messages = http.get(f"/api/sessions/{s['id']}/messages").json()
    assert [(m["role"], m["content"], m["agent"]) for m in messages] == [
        ("user", "remember the milk", None), ("assistant", "noted", "echo")]
    assert messages[0]["id"] == first.json()["id"]
    # The chat dialect sees the same history.
    assert [m["content"] for m in http.get(f"/chat/{s['id']}").json()["messages"]] == ["remember the milk", "noted"]
    assert_error(http.post(f"/api/sessions/{s['id']}/messages", json={"role": "robot", "content": "x"}), 400)
    assert_error(http.post(f"/api/sessions/{s['id']}/messages", json={"content": ""}), 400)
    assert_error(http.post("/api/sessions/sess_nope/messages", json={"content": "x"}), 404)
    assert_error(http.get("/api/sessions/sess_nope/messages"), 404)
    assert http.get("/chat/sess_nope").status_code == 404  # the failed append created nothing


def test_backfill_nicknames_uses_the_sessions_agent(podium):
    namer = {"name": "namer", "model": {"provider": "scripted", "model": "n",
                                        "script": [{"reply": "\"Login Endpoint Work.\"\nextra words"}]}}
    http = podium([ECHO, namer]).http
    p = project(http)
    t = task(http, p["id"], "Implement login")
    mine = session(http, taskIds=[t["id"]], agentId="namer", name="Login")
    default = session(http, name="Draft the release notes")  # no agent: the default (echo)
    named = session(http, name="kept")
    http.patch(f"/api/sessions/{named['id']}", json={"nickname": "Already Named"})
    result = http.post("/api/sessions/backfill-nicknames")
    assert result.status_code == 200, result.text
    body = result.json()
    assert body["updated"] == 2 and body["failed"] == []
    nicknames = {s["id"]: s["nickname"] for s in http.get("/api/sessions").json()}
    assert nicknames[mine["id"]] == "Login Endpoint Work"
    # echo repeats what it was shown: the session's name, cut to five words
    assert nicknames[default["id"]] == "Session name: Draft the release"
    assert nicknames[named["id"]] == "Already Named"
    assert http.post("/api/sessions/backfill-nicknames").json() == {"updated": 0, "sessions": [], "failed": []}


def test_restart_reads_everything_back_unchanged(podium):
    server = podium([ECHO])
    http = server.http
    p = project(http)
    t1 = task(http, p["id"], "one", description="d", prompt="p", priority="low")
    t2 = task(http, p["id"], "two")
    http.post(f"/api/tasks/{t1['id']}/subtasks", json={"title": "part"})
    s1 = session(http, projectId=p["id"], taskIds=[t2["id"], t1["id"]], name="s1", agentId="echo")
    session(http, taskIds=[t1["id"]], name="s2")
    http.post(f"/api/sessions/{s1['id']}/messages", json={"content": "kept"})
    http.patch(f"/api/tasks/{t2['id']}", json={"status": "completed"})

    def snapshot():
        return {"projects": http.get("/api/projects").json(), "tasks": http.get("/api/tasks").json(),
                "sessions": http.get("/api/sessions").json(),
                "messages": http.get(f"/api/sessions/{s1['id']}/messages").json()}

    before = snapshot()
    assert before["sessions"][0]["taskIds"] == [t2["id"], t1["id"]]
    server.restart()
    http = server.http
    assert snapshot() == before


def test_every_session_and_task_is_listed_past_the_drivers_bind_limit(podium):
    """Listing every session or task read their links with each id as a bind parameter, which
    PostgreSQL's driver refuses past 32,767: a 500 on a busy server, where each run without a
    session id makes a session. The 33,000 others are written straight into the database, as
    making them through the API would take minutes; what is under test is the listing."""
    import asyncio

    from sqlalchemy.ext.asyncio import create_async_engine

    from podium.store.tables import sessions
    from podium.store.work import tasks

    server = podium([ECHO])
    http = server.http
    p = project(http)
    linked = task(http, p["id"], "linked")
    http.post(f"/api/tasks/{linked['id']}/subtasks", json={"title": "step"})
    s = session(http, taskIds=[linked["id"]], name="linked")
    count, now = 33_000, int(time.time() * 1000)

    async def seed() -> None:
        url = server.config.get("database_url") or f"sqlite+aiosqlite:///{server.root / 'data' / 'podium.db'}"
        engine = create_async_engine(url)
        async with engine.begin() as conn:
            await conn.execute(sessions.insert(), [{"id": f"sess_seed{i}", "status": "completed", "started_at": now,
                                                    "last_activity": now, "name": ""} for i in range(count)])
            await conn.execute(tasks.insert(), [{"id": f"task_seed{i}", "project_id": p["id"], "title": "t",
                                                 "description": "", "prompt": "", "status": "pending",
                                                 "priority": "low", "created_at": now, "updated_at": now}
                                                for i in range(count)])
        await engine.dispose()

    asyncio.run(seed())
    listed = http.get("/api/sessions")
    assert listed.status_code == 200, listed.text[:300]
    by_id = {x["id"]: x for x in listed.json()}
    assert len(by_id) == count + 1 and by_id[s["id"]]["taskIds"] == [linked["id"]]
    assert by_id["sess_seed7"]["taskIds"] == []
    listed = http.get("/api/tasks")
    assert listed.status_code == 200, listed.text[:300]
    by_id = {x["id"]: x for x in listed.json()}
    assert len(by_id) == count + 1 and by_id[linked["id"]]["sessionIds"] == [s["id"]]
    assert [sub["title"] for sub in by_id[linked["id"]]["subtasks"]] == ["step"]
    assert [x["id"] for x in http.get("/api/sessions", params={"taskId": linked["id"]}).json()] == [s["id"]]
    assert len(http.get("/api/tasks", params={"projectId": p["id"]}).json()) == count + 1
