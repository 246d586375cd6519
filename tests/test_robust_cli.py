"""Robustness of the command line, the run folder and the plugin set (issue 14, classes 2-5
and 7): hostile options, files that must never be lost, plugins that misbehave."""

from __future__ import annotations

import json
import math
import os
import textwrap
import threading
import time
from pathlib import Path

import click
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from acgmake import Artifact, Stage
from acgmake.errors import UserError
from acgmake.pipeline import Registry, atomic_path, check_param, run
from acgmake.plugins import Plugins
from robust_support import acgmake_limited, assert_clear_failure

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def builtin_stages():
    plugins = Plugins()
    plugins.load(entry_points=False)
    return plugins.registry.stages


# ---------------------------------------------------------------------------------------------
# 3 and 7: option values are checked in one place, before anything runs

NUMBERS = [(stage, param) for stage in builtin_stages() for param in stage.params]
FLOATS = [
    (stage, param)
    for stage, param in NUMBERS
    if isinstance(param.default, float)
    or isinstance(param.type, click.FloatRange)
    or param.type is float
]


@pytest.mark.robust(3)
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e308", "-1e308", float("nan")])
@pytest.mark.parametrize("stage,param", FLOATS, ids=lambda x: getattr(x, "name", None))
def test_a_float_option_takes_only_finite_numbers_in_its_range(stage, param, value):
    try:
        checked = check_param(stage, param, value)
    except UserError as error:
        assert param.option in error.message and "\n" not in error.message
        return
    assert math.isfinite(checked)
    if isinstance(param.type, click.FloatRange) and param.type.max is not None:
        assert checked <= param.type.max


@pytest.mark.robust(3)
@SETTINGS
@given(value=st.one_of(st.text(max_size=40), st.floats(), st.integers(), st.booleans()))
@example(value="~0")  # found by hypothesis: the home folder of a user "0", who is not there
def test_any_value_for_any_option_is_a_valid_value_or_one_clear_line(value):
    for stage, param in NUMBERS:
        try:
            checked = check_param(stage, param, value)
        except UserError as error:
            assert "\n" not in error.message and param.option in error.message
            continue
        if isinstance(checked, float):
            assert math.isfinite(checked)


@pytest.mark.robust(3)
@pytest.mark.parametrize(
    "args,word",
    [
        (["character", "--truncation", "nan"], "--truncation"),
        (["character", "--edit", "mouth=1e308"], "--edit"),
        (["character", "--edit", "mouth=nan"], "--edit"),
        (["mix", "--workdir", "w", "--loudness", "inf"], "--loudness"),
    ],
)
def test_non_finite_options_are_one_line_and_write_nothing(tmp_path, args, word):
    result = acgmake_limited(*args, cwd=tmp_path, timeout_s=60)
    assert_clear_failure(result, word)
    assert not list(tmp_path.rglob("*.png")) and not list(tmp_path.rglob("*.wav"))


@pytest.mark.robust(7)
@pytest.mark.parametrize(
    "option,value,word",
    [
        ("--truncation", "nan", "--truncation"),
        ("--size", "12x", "--size"),
        ("--size", "1281x720", "--size"),
        ("--background", "no-such-picture.jpg", "does not exist"),
        ("--background", "song.txt", "not a picture"),
        ("--edit", "nose=1", "--edit"),
        ("--character", "no-such-oc.png", "--character"),
        ("--face", "no-such-face.json", "--face"),
    ],
)
def test_a_bad_option_of_a_late_stage_stops_the_song_before_the_first_stage(
    tmp_path, option, value, word
):
    lyrics = tmp_path / "song.txt"
    lyrics.write_text("かえるの うたが\n", encoding="utf-8")
    started = time.monotonic()
    result = acgmake_limited("song", "song.txt", option, value, cwd=tmp_path)
    assert_clear_failure(result, word)
    assert time.monotonic() - started < 20
    assert not (tmp_path / "song.acgmake" / "score.musicxml").exists()


# ---------------------------------------------------------------------------------------------
# 2: edge values


@pytest.mark.robust(2)
@pytest.mark.parametrize("seed", [str(2**64), str(2**32), "-1", "1e3", "nan"])
def test_a_seed_out_of_range_is_a_usage_line(tmp_path, seed):
    result = acgmake_limited("character", "--seed", seed, cwd=tmp_path, timeout_s=60)
    assert_clear_failure(result, "--seed")
    assert result.returncode == 2


def toy_registry(calls: list[str]) -> Registry:
    registry = Registry()
    for kind in ("words", "loud"):
        registry.add_artifact(Artifact(kind, f"{kind}.txt", plugin="acgmake.test"))

    def shout(ctx):
        calls.append("shout")
        ctx.output("loud").write_text(ctx.input("words").read_text().upper())

    registry.add_stage(Stage("shout", ("words",), ("loud",), shout, plugin="acgmake.test"))
    return registry


JSON = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=30,
)
STAGES_SHAPED = st.fixed_dictionaries(
    {"stages": st.dictionaries(st.sampled_from(["shout", "x"]), JSON, max_size=2)}
)


@pytest.mark.robust(2)
@SETTINGS
@given(manifest=st.one_of(JSON, STAGES_SHAPED))
def test_a_manifest_of_any_shape_only_costs_a_rerun(tmp_path_factory, manifest):
    folder = tmp_path_factory.mktemp("run")
    words = folder.parent / f"{folder.name}-words.txt"
    words.write_text("hi")
    calls: list[str] = []
    registry = toy_registry(calls)
    run(registry, folder, ["loud"], inputs={"words": words})
    (folder / "manifest.json").write_text(json.dumps(manifest))
    result = run(registry, folder, ["loud"], inputs={"words": words})
    assert result.files["loud"].read_text() == "HI"
    recorded = json.loads((folder / "manifest.json").read_text())
    assert recorded["stages"]["shout"]["outputs"]["loud"]["file"] == "loud.txt"


@pytest.mark.robust(2)
@pytest.mark.parametrize("text", ["[" * 200_000, '{"stages": ' * 100_000, "\x00\xff", "1" * 10**6])
def test_a_manifest_that_is_not_json_we_wrote_only_costs_a_rerun(tmp_path, text):
    words = tmp_path / "words.txt"
    words.write_text("hi")
    calls: list[str] = []
    registry = toy_registry(calls)
    run(registry, tmp_path / "run", ["loud"], inputs={"words": words})
    (tmp_path / "run" / "manifest.json").write_text(text, errors="surrogateescape")
    run(registry, tmp_path / "run", ["loud"], inputs={"words": words})
    assert calls == ["shout", "shout"]


# ---------------------------------------------------------------------------------------------
# 4: the user's files are never lost


@pytest.mark.robust(4)
@pytest.mark.parametrize(
    "command,name,content",
    [
        ("compose", "a.txt", "かえるの\n"),
        ("song", "a.txt", "かえるの\n"),
        ("colorize", "a.png", None),
        ("upscale", "a.png", None),
    ],
)
@pytest.mark.parametrize("spelling", ["same", "dotted", "link"])
def test_output_onto_the_input_is_refused_and_the_input_kept(
    tmp_path, command, name, content, spelling
):
    from PIL import Image

    source = tmp_path / name
    if content is None:
        Image.new("RGB", (64, 64), (200, 180, 160)).save(source)
    else:
        source.write_text(content, encoding="utf-8")
    before = source.read_bytes()
    output = {"same": name, "dotted": f"./sub/../{name}", "link": f"link{source.suffix}"}[spelling]
    (tmp_path / "sub").mkdir()
    if spelling == "link":
        os.link(source, tmp_path / output)  # a hard link: the same file under another name
    result = acgmake_limited(command, name, "-o", output, cwd=tmp_path, timeout_s=90)
    assert_clear_failure(result, "replace")
    assert source.read_bytes() == before


@pytest.mark.robust(4)
def test_a_folder_acgmake_did_not_make_is_not_written_over(tmp_path):
    pictures = tmp_path / "Pictures"
    pictures.mkdir()
    mine = pictures / "character.png"
    mine.write_bytes(b"my own drawing")
    result = acgmake_limited("character", "--workdir", str(pictures), cwd=tmp_path, timeout_s=60)
    assert_clear_failure(result, "not an acgmake run folder")
    assert mine.read_bytes() == b"my own drawing"
    assert sorted(p.name for p in pictures.iterdir()) == ["character.png"]


@pytest.mark.robust(4)
def test_two_writers_of_one_output_each_publish_a_whole_file(tmp_path):
    target = tmp_path / "clip.mp4"
    payloads = [bytes([n]) * 3_000_000 for n in (1, 2)]
    published: list[bytes] = []

    def write(payload: bytes) -> None:
        for _ in range(5):
            with atomic_path(target) as temporary:
                with open(temporary, "wb") as handle:
                    for start in range(0, len(payload), 65536):
                        handle.write(payload[start : start + 65536])
            published.append(target.read_bytes())

    threads = [threading.Thread(target=write, args=(p,)) for p in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(published) == 10 and all(data in payloads for data in published)
    assert target.read_bytes() in payloads
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


# ---------------------------------------------------------------------------------------------
# 5: plugins that misbehave


def fake_plugin(site: Path, dist: str, module: str, source: str) -> None:
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[acgmake]\n{module} = {module}\n")


HANGS = """
import time
from acgmake import Artifact, Stage, hookimpl

def _run(ctx):
    while True:
        time.sleep(0.1)

@hookimpl
def register_artifacts(register):
    register(Artifact("hung", "hung.txt"))

@hookimpl
def register_stages(register):
    register(Stage("hang", needs=(), makes=("hung",), run=_run))
"""

CYCLE = """
from acgmake import Artifact, Stage, hookimpl

@hookimpl
def register_artifacts(register):
    for kind in ("ping", "pong", "end"):
        register(Artifact(kind, kind + ".txt"))

@hookimpl
def register_stages(register):
    register(Stage("ping", needs=("pong",), makes=("ping",), run=print))
    register(Stage("pong", needs=("ping",), makes=("pong",), run=print))
    register(Stage("end", needs=("ping",), makes=("end",), run=print))
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    fake_plugin(root, "acgmake-exits", "exitsplug", "import sys\nsys.exit(3)\n")
    fake_plugin(
        root,
        "acgmake-exits-later",
        "exitslaterplug",
        """
        import sys
        from acgmake import hookimpl

        @hookimpl
        def register_stages(register):
            sys.exit("bye")
        """,
    )
    fake_plugin(
        root,
        "acgmake-usurper",
        "usurperplug",
        """
        from acgmake import hookimpl

        @hookimpl
        def register_commands(cli):
            @cli.command("doctor")
            def doctor():
                print("not the real doctor")
        """,
    )
    fake_plugin(root, "acgmake-hangs", "hangsplug", HANGS)
    fake_plugin(root, "acgmake-cycle", "cycleplug", CYCLE)
    return root


def with_site(site: Path, plugins: str, **more: str) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH", "")]))
    return {"PYTHONPATH": path, "ACGMAKE_PLUGINS": plugins, **more}


@pytest.mark.robust(5)
def test_a_plugin_that_exits_at_import_or_in_a_hook_is_contained(site, tmp_path):
    env = with_site(site, "acgmake-exits,acgmake-exits-later")
    helped = acgmake_limited("--help", cwd=tmp_path, env=env, timeout_s=60)
    assert helped.returncode == 0 and "song" in helped.stdout, helped.stderr
    listed = acgmake_limited("plugins", cwd=tmp_path, env=env, timeout_s=60)
    records = {r["name"]: r for r in json.loads(listed.stdout)}
    assert records["acgmake-exits"]["status"] == "broken"
    assert "SystemExit" in records["acgmake-exits"]["error"]
    assert records["acgmake-exits-later"]["status"] == "broken"


@pytest.mark.robust(5)
def test_a_plugin_command_named_like_a_builtin_one_is_refused(site, tmp_path):
    env = with_site(site, "acgmake-usurper")
    listed = acgmake_limited("plugins", cwd=tmp_path, env=env, timeout_s=60)
    record = json.loads(listed.stdout)[0]
    assert record["status"] == "broken" and "doctor" in record["error"]
    helped = acgmake_limited("doctor", "--help", cwd=tmp_path, env=env, timeout_s=60)
    assert "Check Sinsy" in helped.stdout


@pytest.mark.robust(5)
def test_a_hung_plugin_stage_is_given_up_after_its_time_limit(site, tmp_path):
    env = with_site(site, "acgmake-hangs", ACGMAKE_STAGE_TIMEOUT="2")
    started = time.monotonic()
    result = acgmake_limited("hang", "--workdir", "run", cwd=tmp_path, env=env, timeout_s=60)
    assert_clear_failure(result, "acgmake-hangs", "time limit")
    assert time.monotonic() - started < 30
    assert not (tmp_path / "run" / "hung.txt").exists()


@pytest.mark.robust(5)
def test_a_cycle_between_plugin_stages_names_the_plugin(site, tmp_path):
    env = with_site(site, "acgmake-cycle")
    result = acgmake_limited("stages", cwd=tmp_path, env=env, timeout_s=60)
    assert_clear_failure(result, "cycle", "acgmake-cycle")


@pytest.mark.robust(5)
@pytest.mark.parametrize(
    "value,loaded,absent,warned",
    [
        ("acgmake-usurpr", set(), {"acgmake-usurper"}, "acgmake-usurpr"),
        ("-acgmake-usurper", {"acgmake-exits", "acgmake-hangs"}, {"acgmake-usurper"}, None),
        ("acgmake-hangs,-acgmake-hangs", set(), {"acgmake-hangs"}, None),
        ("-acgmake-nope", {"acgmake-usurper"}, set(), "acgmake-nope"),
    ],
)
def test_the_plugin_list_warns_of_unknown_names_and_can_leave_one_out(
    site, tmp_path, value, loaded, absent, warned
):
    result = acgmake_limited("plugins", cwd=tmp_path, env=with_site(site, value), timeout_s=60)
    assert result.returncode == 0, result.stderr
    names = {record["name"] for record in json.loads(result.stdout)}
    assert loaded <= names and not absent & names
    if warned:
        assert f"names {warned}" in result.stderr and "check the spelling" in result.stderr
    else:
        assert "check the spelling" not in result.stderr


# ---------------------------------------------------------------------------------------------
# 2 and 3: the option parser, on any words


def stage_option_names() -> list[str]:
    return sorted({param.option for stage in builtin_stages() for param in stage.params})


@pytest.mark.robust(2)
@settings(max_examples=80, deadline=None)
@given(
    command=st.sampled_from([stage.name for stage in builtin_stages()]),
    options=st.lists(
        st.tuples(
            st.sampled_from(stage_option_names() + ["--seed", "--workdir", "-o", "--force"]),
            st.one_of(
                st.text(max_size=12),
                st.sampled_from(["nan", "-inf", "1e308", "-1", "0", str(2**70), "x" * 300]),
            ),
        ),
        max_size=4,
    ),
)
def test_any_options_on_any_command_end_in_a_clean_exit(command, options):
    """Any words as option values: a usage line or a user error, never a traceback (the
    input file does not exist, so no stage runs)."""
    from click.testing import CliRunner

    from acgmake.cli import cli

    argv = [command, "/nonexistent/input.file"]
    for option, value in options:
        argv += [option] if option == "--force" else [option, value]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code in (1, 2), (argv, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), argv
    assert "Traceback" not in result.output


@pytest.mark.robust(3)
@pytest.mark.parametrize("command", ["compose", "song"])
def test_an_error_about_a_given_file_names_it_as_the_user_gave_it(tmp_path, command):
    """The stages read the run folder's copy (my-song.acgmake/lyrics.txt); the message names
    the user's own file, not a file they never wrote."""
    (tmp_path / "my-song.txt").write_text("", encoding="utf-8")
    result = acgmake_limited(command, "my-song.txt", cwd=tmp_path, timeout_s=60)
    line = assert_clear_failure(result, "my-song.txt is empty")
    assert "lyrics.txt" not in line
