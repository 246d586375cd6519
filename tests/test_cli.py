"""The command line on a small chain of test stages: options, errors, output, Ctrl-C."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
import pytest

from acgmake import Artifact, Param, Stage
from acgmake.cli import main


def write_score(ctx):
    lyrics = ctx.input("lyrics").read_text(encoding="utf-8").strip()
    if not lyrics:
        from acgmake.errors import UserError

        raise UserError("the lyrics are empty; write at least one line")
    ctx.output("score").write_text(f"{ctx.params['key']}:{lyrics}")


def write_clip(ctx):
    if ctx.params["interrupt"]:
        ctx.output("clip").write_text("half a clip")
        raise KeyboardInterrupt
    ctx.output("clip").write_text(ctx.input("score").read_text() + f"@{ctx.params['fps']}")


def artifacts(register):
    register(Artifact("lyrics", "lyrics.txt"))
    register(Artifact("score", "score.txt"))
    register(Artifact("clip", "clip.mp4"))


def stages(register):
    register(
        Stage(
            "compose",
            needs=("lyrics",),
            makes=("score",),
            run=write_score,
            params=(Param("key", "C", "key of the song"),),
            help="Compose it.",
        )
    )
    register(
        Stage(
            "animate",
            needs=("score",),
            makes=("clip",),
            run=write_clip,
            params=(
                Param("fps", 24, "frames per second", type=click.IntRange(1, 60)),
                Param("interrupt", False, "pretend Ctrl-C is pressed"),
            ),
            help="Animate it.",
        )
    )


@pytest.fixture(autouse=True)
def chain(use_plugins, make_plugin, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    use_plugins(make_plugin("acgmake.toy", register_artifacts=artifacts, register_stages=stages))


def call(*args: str, capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
        raise SystemExit(0)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


@pytest.fixture
def lyrics(tmp_path: Path) -> Path:
    path = tmp_path / "song.txt"
    path.write_text("かえるの\n", encoding="utf-8")
    return path


def test_song_runs_every_stage_and_writes_the_clip_beside_the_lyrics(lyrics, capsys):
    code, out, err = call("song", str(lyrics), "--key", "G", "--fps", "30", capsys=capsys)
    assert code == 0, err
    assert (lyrics.parent / "song.mp4").read_text() == "G:かえるの@30"
    assert "[1/2] compose done" in err and "[2/2] animate done" in err
    assert "Wrote" in out
    manifest = json.loads((lyrics.parent / "song.acgmake" / "manifest.json").read_text())
    assert manifest["stages"]["animate"]["params"] == {"fps": 30, "interrupt": False}

    code, out, err = call("song", str(lyrics), "--key", "G", "--fps", "30", capsys=capsys)
    assert code == 0 and "compose cached" in err and "animate cached" in err


def test_each_stage_is_a_command_reading_and_writing_the_run_folder(lyrics, capsys):
    code, out, err = call("compose", str(lyrics), capsys=capsys)
    assert code == 0, err
    score = lyrics.parent / "song.acgmake" / "score.txt"
    assert score.read_text() == "C:かえるの"
    code, out, err = call("animate", str(score), "-o", "out.mp4", capsys=capsys)
    assert code == 0, err
    assert Path("out.mp4").read_text() == "C:かえるの@24"
    # The score lived in the run folder already, so the clip went there too.
    assert (lyrics.parent / "song.acgmake" / "clip.mp4").exists()


def test_a_user_error_is_one_line_and_a_nonzero_exit(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    code, out, err = call("song", str(empty), capsys=capsys)
    assert code == 1
    assert err.strip().splitlines()[-1] == "Error: the lyrics are empty; write at least one line"
    assert "Traceback" not in err
    assert not (tmp_path / "empty.mp4").exists()


def test_a_missing_lyrics_file_names_the_path(tmp_path, capsys):
    code, out, err = call("song", "nope.txt", capsys=capsys)
    assert code == 1 and "Error: nope.txt does not exist" in err


def test_an_output_path_in_a_missing_folder_fails_before_any_stage_runs(lyrics, capsys):
    code, out, err = call("song", str(lyrics), "-o", "no/such/folder/clip.mp4", capsys=capsys)
    assert code == 1
    assert (
        "Error: cannot write no/such/folder/clip.mp4: the folder no/such/folder does not "
        "exist" in err
    )
    assert "[1/2]" not in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_an_output_path_in_a_read_only_folder_fails_before_any_stage_runs(lyrics, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o500)
    try:
        code, out, err = call("song", str(lyrics), "-o", str(locked / "clip.mp4"), capsys=capsys)
    finally:
        os.chmod(locked, 0o700)
    assert code == 1 and "cannot write" in err and "Permission denied" in err
    assert "[1/2]" not in err


def test_an_option_out_of_range_is_refused_by_name(lyrics, capsys):
    code, out, err = call("song", str(lyrics), "--fps", "500", capsys=capsys)
    assert code == 2 and "--fps" in err


def test_ctrl_c_leaves_no_clip_and_says_how_to_resume(lyrics, capsys):
    code, out, err = call("song", str(lyrics), "--interrupt", capsys=capsys)
    assert code == 130
    assert "interrupted" in err and "run the same command again" in err
    assert not (lyrics.parent / "song.mp4").exists()
    run_folder = lyrics.parent / "song.acgmake"
    assert not (run_folder / "clip.mp4").exists()
    assert not [p for p in run_folder.iterdir() if "partial" in p.name]
    # compose finished before the interruption and is reused.
    code, out, err = call("song", str(lyrics), capsys=capsys)
    assert code == 0 and "compose cached" in err


def test_stages_shows_the_order_with_needs_and_makes(capsys):
    code, out, err = call("stages", "--json", capsys=capsys)
    assert code == 0
    rows = json.loads(out)["stages"]
    assert [(r["name"], r["needs"], r["makes"]) for r in rows] == [
        ("compose", ["lyrics"], ["score"]),
        ("animate", ["score"], ["clip"]),
    ]


def test_stage_help_lists_its_options_with_defaults(capsys):
    code, out, err = call("animate", "--help", capsys=capsys)
    assert code == 0
    assert "--fps" in out and "frames per second" in out and "[default: 24]" in out
    assert "Needs: score. Makes: clip." in out


def test_an_optional_stage_runs_in_song_only_when_asked(use_plugins, make_plugin, lyrics, capsys):
    def poster(register):
        register(Artifact("poster", "poster.txt"))

    def poster_stage(register):
        register(
            Stage(
                "poster",
                needs=("score",),
                makes=("poster",),
                optional=True,
                run=lambda ctx: ctx.output("poster").write_text("P"),
            )
        )

    use_plugins(
        make_plugin("acgmake.toy", register_artifacts=artifacts, register_stages=stages),
        make_plugin("acgmake.poster", register_artifacts=poster, register_stages=poster_stage),
    )
    code, out, err = call("song", str(lyrics), capsys=capsys)
    assert code == 0 and "poster" not in err
    code, out, err = call("song", str(lyrics), "--also", "poster", capsys=capsys)
    assert code == 0 and "poster done" in err
    assert (lyrics.parent / "song.acgmake" / "poster.txt").read_text() == "P"
    code, out, err = call("song", str(lyrics), "--also", "nope", capsys=capsys)
    assert code == 1 and "no stage named 'nope'" in err


def test_jobs_one_runs_the_stages_in_order_and_jobs_zero_is_refused(lyrics, capsys):
    code, out, err = call("song", str(lyrics), "--jobs", "1", capsys=capsys)
    assert code == 0, err
    assert err.index("compose done") < err.index("animate done")
    code, out, err = call("song", str(lyrics), "-j", "0", capsys=capsys)
    assert code == 2 and "--jobs" in err


def test_several_songs_each_get_a_clip_and_one_failure_does_not_stop_the_others(tmp_path, capsys):
    for name in ("a", "b"):
        (tmp_path / f"{name}.txt").write_text(f"{name}の\n", encoding="utf-8")
    code, out, err = call("song", "a.txt", "nope.txt", "b.txt", capsys=capsys)
    assert code == 1
    assert (tmp_path / "a.mp4").read_text() == "C:aの@24"
    assert (tmp_path / "b.mp4").read_text() == "C:bの@24"
    assert "Error: nope.txt: nope.txt does not exist" in err
    table = out[out.index("song ") :]
    assert "a.txt" in table and "b.txt" in table and table.count(" ok") == 2
    assert err.strip().splitlines()[-1].startswith("Error: 1 of 3 songs failed (nope.txt)")


def test_a_folder_of_lyrics_makes_a_clip_for_each_into_the_output_folder(tmp_path, capsys):
    songs, clips = tmp_path / "songs", tmp_path / "clips"
    songs.mkdir()
    clips.mkdir()
    for name in ("x", "y"):
        (songs / f"{name}.txt").write_text(f"{name}の\n", encoding="utf-8")
    code, out, err = call("song", "songs", "-o", "clips", capsys=capsys)
    assert code == 0, err
    assert sorted(p.name for p in clips.iterdir()) == ["x.mp4", "y.mp4"]
    assert (songs / "x.acgmake").is_dir() and (songs / "y.acgmake").is_dir()
    code, out, err = call("song", "songs", "-o", "clips/x.mp4", capsys=capsys)
    assert code == 2 and "must be a folder" in err


def test_a_run_enlarges_the_character_for_its_clip_unless_told_a_size():
    """Worked out in the pipeline (Stage.derive), so the Python API does what the command
    line does; the upscale command alone keeps its own default."""
    from acgmake.pipeline import derived_params, plan
    from acgmake.testing import load_plugins

    registry = load_plugins().registry
    song = plan(registry, ["clip"], ["lyrics"])
    cases = [
        ({}, 768),  # the default clip, 1280x720
        ({"animate": {"size": "1080p"}}, 1024),
        ({"animate": {"size": "320x180"}}, 256),
        ({"animate": {"size": "1080p"}, "upscale": {"upscale_size": 512}}, 512),
    ]
    for params, size in cases:
        assert derived_params(song, params)["upscale"]["upscale_size"] == size
    alone = [registry.stage("upscale")]
    assert "upscale_size" not in derived_params(alone, {}).get("upscale", {})
    # The strip's blink is fitted only for a clip that shows the model's own blink.
    for params, fit in (
        ({}, False),
        ({"animate": {"blink": "model"}}, True),
        ({"expressions": {"fit_blink": True}}, True),
    ):
        assert derived_params(song, params)["expressions"]["fit_blink"] is fit
    expressions = [registry.stage("expressions")]
    assert "fit_blink" not in derived_params(expressions, {}).get("expressions", {})
