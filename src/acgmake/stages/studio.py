"""The ``acgmake studio`` command: the chain in a browser page, on this machine only.

A built-in plugin like the stages: it adds a command. Starlette and uvicorn are imported when the
command runs, never when ``acgmake`` starts.
"""

from __future__ import annotations

import socket
from pathlib import Path

import click

from acgmake import hookimpl
from acgmake.errors import UserError

RUN_SUFFIX = ".acgmake"
HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port free on the loopback interface now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def studio_folder(given: Path | None) -> tuple[Path, Path | None]:
    """(the run folder, the lyrics file to bring in or ``None``) for what the user named: a run
    folder, a lyrics file (its run folder is ``<stem>.acgmake`` beside it, as for ``acgmake
    song``), or nothing (``studio.acgmake`` here)."""
    from acgmake.cli import default_workdir

    if given is None:
        return Path("studio" + RUN_SUFFIX), None
    if given.is_dir():
        return given, None
    if given.is_file():
        return default_workdir(given, given.stem), given
    raise UserError(f"{given} does not exist; give a lyrics file or a run folder")


def bring_lyrics(folder: Path, lyrics: Path) -> str:
    """Copy ``lyrics`` into the run folder as its lyrics.txt, unless the folder has lyrics
    already (edited in the studio, perhaps): those are kept. Returns what was done, for the
    user."""
    from acgmake.pipeline import copy_atomic, sha256_file

    there = folder / "lyrics.txt"
    if there.is_file():
        if sha256_file(there) != sha256_file(lyrics):
            return f"{there} differs from {lyrics}; the studio works on {there}"
        return ""
    folder.mkdir(parents=True, exist_ok=True)
    copy_atomic(lyrics, there)
    return ""


@hookimpl
def register_commands(cli):
    @cli.command("studio")
    @click.argument("source", required=False, type=click.Path(path_type=Path))
    @click.option(
        "--port",
        type=click.IntRange(0, 65535),
        default=0,
        help="Port on 127.0.0.1 to listen on [default: a free one].",
    )
    @click.option("--no-browser", is_flag=True, help="Print the address; do not open a browser.")
    def studio(source: Path | None, port: int, no_browser: bool) -> None:
        """Work on a song in your browser: lyrics, character, colours, clip.

        SOURCE is a run folder or a lyrics file (its run folder is <name>.acgmake beside it);
        every change is a stage run there, as on the command line. Listens on 127.0.0.1 only;
        the address printed holds a key that only this start knows. Ctrl-C stops it.

        Example: acgmake studio examples/kaeru.txt
        """
        import webbrowser

        try:
            import uvicorn

            from acgmake.studio.app import create_app
        except ImportError as missing:
            raise UserError(
                f"the studio needs {missing.name}: pip install 'acgmake[studio]'"
            ) from None
        from acgmake.pipeline import RunFolder, default_jobs
        from acgmake.plugins import get_plugins
        from acgmake.studio.security import new_token
        from acgmake.studio.work import Studio

        folder, lyrics = studio_folder(source)
        plugins = get_plugins()
        RunFolder(folder, plugins.registry).create()
        if lyrics is not None:
            note = bring_lyrics(folder, lyrics)
            if note:
                click.echo(note)
        port = port or free_port()
        token = new_token()
        work = Studio(folder, plugins, jobs=default_jobs())
        app = create_app(work, token=token, port=port)
        address = f"http://{HOST}:{port}/?token={token}"
        click.echo(f"acgmake studio on {folder}: {address}\n(Ctrl-C stops it)")
        config = uvicorn.Config(app, host=HOST, port=port, log_level="warning", lifespan="on")
        server = uvicorn.Server(config)
        if not no_browser:
            webbrowser.open(address)
        try:
            server.run()
        except KeyboardInterrupt:  # uvicorn stops on Ctrl-C, then raises it again
            pass
        finally:
            work.close()
        click.echo("studio stopped")
