"""The `podium` command. Commands other than `serve` call services directly, not HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from podium.core import Core
from podium.errors import PodiumError
from podium.runtime.events import Failed, TextDelta, ToolCall, ToolResult
from podium.settings import Settings, settings_table

app = typer.Typer(help="Podium, a self-hosted AI agent server.", no_args_is_help=True)
console = Console()
T = TypeVar("T")

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="YAML configuration file.")]
DataOpt = Annotated[Path | None, typer.Option("--data-dir", help="Folder for the database and workspace.")]
AgentsOpt = Annotated[Path | None, typer.Option("--agents-dir", help="Folder of agent YAML files.")]


def _settings(config: Path | None, **overrides: Any) -> Settings:
    try:
        return Settings.load(config, **overrides)
    except (FileNotFoundError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from exc


def _with_core(settings: Settings, work: Callable[[Core], Awaitable[T]]) -> T:
    async def main() -> T:
        core = Core(settings)
        await core.start()
        try:
            return await work(core)
        finally:
            await core.stop()

    try:
        return asyncio.run(main())
    except PodiumError as exc:
        console.print(f"[red]error:[/red] {exc.message}", markup=True, highlight=False)
        if exc.hint:
            console.print(exc.hint, markup=False, highlight=False)
        raise typer.Exit(1) from exc


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    data_dir: DataOpt = None,
    agents_dir: AgentsOpt = None,
    config: ConfigOpt = None,
    insecure: Annotated[bool, typer.Option(
        "--insecure", help="Listen on a non-loopback address even with no access tokens.")] = False,
) -> None:
    """Start the server."""
    import uvicorn

    from podium.app import create_app, is_loopback

    settings = _settings(config, host=host, port=port, data_dir=data_dir, agents_dir=agents_dir)
    if not is_loopback(settings.host) and not settings.auth.tokens and not insecure:
        # Anyone who can reach the address could run agents, tools and spend provider keys.
        console.print(f"[red]refusing to listen on {settings.host}:[/red] it is not a loopback address and no "
                      "access tokens are configured (auth.tokens), so anyone on the network could use "
                      "this server. Configure tokens, listen on 127.0.0.1, or pass --insecure.")
        raise typer.Exit(2)
    console.print(f"Podium listening on http://{settings.host}:{settings.port}")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                log_level=settings.log_level, access_log=False, loop="auto",
                ws_ping_interval=settings.events.ping_interval or None,
                ws_ping_timeout=settings.events.ping_timeout)


@app.command()
def agents(data_dir: DataOpt = None, agents_dir: AgentsOpt = None, config: ConfigOpt = None) -> None:
    """List the agents."""
    settings = _settings(config, data_dir=data_dir, agents_dir=agents_dir)

    async def work(core: Core) -> None:
        table = Table("name", "type", "model", "pattern", "description")
        for spec in core.agents.all():
            model = spec.model or core.loop.default_model
            table.add_row(spec.name, spec.kind, model.primary.label, spec.orchestration.pattern, spec.description)
        console.print(table)

    _with_core(settings, work)


@app.command()
def run(
    agent: Annotated[str, typer.Argument(help="Agent name.")],
    query: Annotated[str, typer.Argument(help="What to ask.")],
    session: Annotated[str | None, typer.Option(help="Session id (new if omitted).")] = None,
    data_dir: DataOpt = None,
    agents_dir: AgentsOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Run an agent once and print its answer."""
    settings = _settings(config, data_dir=data_dir, agents_dir=agents_dir)

    async def work(core: Core) -> None:
        result = await core.conversations.run(agent, query, session)
        console.print(result.response, markup=False, highlight=False)

    _with_core(settings, work)


@app.command()
def chat(
    agent: Annotated[str, typer.Argument(help="Agent name.")],
    session: Annotated[str | None, typer.Option(help="Session id (new if omitted).")] = None,
    data_dir: DataOpt = None,
    agents_dir: AgentsOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Talk to an agent in the terminal, streaming its answers. Ctrl-D ends."""
    settings = _settings(config, data_dir=data_dir, agents_dir=agents_dir)

    async def work(core: Core) -> None:
        session_id = session
        while True:
            try:
                line = await asyncio.to_thread(input, "you> ")
            except EOFError:
                return
            if not line.strip():
                continue
            handle = await core.conversations.start(agent, line, session_id)
            session_id = handle.session_id
            console.print(f"[bold]{agent}>[/bold] ", end="")
            async for event in handle.events():
                if isinstance(event, TextDelta):
                    console.print(event.text, end="", markup=False, highlight=False)
                elif isinstance(event, ToolCall):
                    console.print(f"\n[dim]→ {event.name}({json.dumps(event.input)})[/dim]")
                elif isinstance(event, ToolResult):
                    console.print(f"[dim]← {event.output[:200]}[/dim]", markup=False)
                elif isinstance(event, Failed):
                    console.print(f"\n[red]error:[/red] {event.error.message}")
            console.print()

    _with_core(settings, work)


@app.command()
def config(
    config: ConfigOpt = None,
    table: Annotated[bool, typer.Option("--table", help="Print the settings reference as Markdown.")] = False,
) -> None:
    """Print the effective configuration, secrets masked."""
    if table:
        print(settings_table())
        return
    console.print_json(json.dumps(_settings(config).masked()))


@app.command()
def status(data_dir: DataOpt = None, agents_dir: AgentsOpt = None, config: ConfigOpt = None) -> None:
    """Print the system status (the same figures as GET /v1/system/status)."""
    settings = _settings(config, data_dir=data_dir, agents_dir=agents_dir)

    async def work(core: Core) -> None:
        table = Table("field", "value")
        for key, value in (await core.system.status()).items():
            table.add_row(key, json.dumps(value) if isinstance(value, dict) else str(value))
        console.print(table)

    _with_core(settings, work)


@app.command()
def doctor(data_dir: DataOpt = None, agents_dir: AgentsOpt = None, config: ConfigOpt = None) -> None:
    """Check the database, every provider endpoint agents use, the embedder and free disk."""
    settings = _settings(config, data_dir=data_dir, agents_dir=agents_dir)

    async def work(core: Core) -> dict[str, Any]:
        return await core.system.doctor()

    report = _with_core(settings, work)
    colour = {"healthy": "green", "degraded": "yellow", "failing": "red"}
    table = Table("check", "status", "message")
    for item in report["checks"]:
        table.add_row(item["name"], f"[{colour[item['status']]}]{item['status']}[/]", item["message"] or "")
    console.print(table)
    console.print(", ".join(f"{n} {s}" for s, n in report["summary"].items()))
    if report["summary"]["failing"]:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
