"""Issue 15: a stage command leaves the run its input came from alone, a plugin's import
traceback under ACGMAKE_DEBUG, the licence files, the compose report after a plain install,
and section labels engraved above the staff."""

from __future__ import annotations

import json
import os
import re
import runpy
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from acgmake import Artifact, Stage
from acgmake import plugins as plugin_module
from acgmake.cli import cli, main
from test_cli import call  # the console script in-process: (exit code, stdout, stderr)

ROOT = Path(__file__).resolve().parent.parent


# -- 1. a stage command given a file of a run folder ------------------------------------------


def _compose(ctx):
    ctx.output("score").write_text("score of " + ctx.input("lyrics").read_text().strip())


def _polish(ctx):  # a refiner: needs and makes the score, as upscale does the character
    ctx.output("score").write_text("polished " + ctx.input("score").read_text())


def _midi(ctx):
    ctx.output("midi").write_text("midi of " + ctx.input("score").read_text())


def _animate(ctx):
    midi = ctx.input("midi")
    extra = f" + {midi.read_text()}" if midi is not None else ""
    ctx.output("clip").write_text("clip of " + ctx.input("score").read_text() + extra)


def _artifacts(register):
    register(Artifact("lyrics", "lyrics.txt"))
    register(Artifact("score", "score.txt"))
    register(Artifact("midi", "score.mid"))
    register(Artifact("clip", "clip.mp4"))


def _stages(register):
    register(Stage("compose", needs=("lyrics",), makes=("score",), run=_compose))
    register(Stage("midi", needs=("score",), makes=("midi",), run=_midi))
    register(Stage("polish", needs=("score",), makes=("score",), run=_polish))
    register(Stage("animate", needs=("score",), uses=("midi",), makes=("clip",), run=_animate))


@pytest.fixture
def song_run(use_plugins, make_plugin, monkeypatch, tmp_path) -> Path:
    """A run folder made by `acgmake song` from song.txt: the polished score (compose's is in
    stages/compose/), midi and clip in it."""
    monkeypatch.chdir(tmp_path)
    use_plugins(
        make_plugin("acgmake.toy15", register_artifacts=_artifacts, register_stages=_stages)
    )
    lyrics = tmp_path / "song.txt"
    lyrics.write_text("かえる\n", encoding="utf-8")
    assert main_ok("song", str(lyrics))
    run = tmp_path / "song.acgmake"
    assert (run / "score.txt").read_text() == SCORE
    return run


SCORE = "polished score of かえる"


def main_ok(*args: str) -> bool:
    try:
        main(list(args))
    except SystemExit as done:
        return done.code == 0
    return True


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name != ".lock"}


def test_a_refiner_given_a_run_folders_file_leaves_that_run_alone(song_run, capsys):
    before = snapshot(song_run)
    code, out, err = call(
        "polish", str(song_run / "score.txt"), "-o", "polished.txt", capsys=capsys
    )
    assert code == 0, err
    assert Path("polished.txt").read_text() == "polished " + SCORE
    assert snapshot(song_run) == before  # score.txt and the manifest untouched
    own = song_run.parent / "song.polish.acgmake"
    assert (own / "score.txt").read_text() == "polished " + SCORE
    assert "would replace score.txt" in err and str(own) in err
    # Again: the same result, the run still untouched (the input is not polished twice).
    code, out, err = call("polish", str(song_run / "score.txt"), "-o", "again.txt", capsys=capsys)
    assert code == 0, err
    assert Path("again.txt").read_text() == "polished " + SCORE
    assert snapshot(song_run) == before


def test_a_stage_that_replaces_nothing_there_still_writes_into_the_run_folder(song_run, capsys):
    # As the README shows: `acgmake midi examples/hoshi.acgmake/score.musicxml`.
    (song_run / "score.mid").unlink()
    code, out, err = call("midi", str(song_run / "score.txt"), capsys=capsys)
    assert code == 0, err
    assert (song_run / "score.mid").read_text() == "midi of " + SCORE
    assert "would replace" not in err
    # Its own output from the song run (or from the last time) it may redo there: cached.
    code, out, err = call("midi", str(song_run / "score.txt"), capsys=capsys)
    assert code == 0 and "cached" in err and "would replace" not in err


def test_a_file_the_stage_did_not_make_is_not_replaced(song_run, capsys):
    (song_run / "score.mid").write_text("my own midi")  # edited by hand since the run
    code, out, err = call("midi", str(song_run / "score.txt"), "-o", "out.mid", capsys=capsys)
    assert code == 0, err
    assert (song_run / "score.mid").read_text() == "my own midi"
    assert (song_run.parent / "song.midi.acgmake" / "score.mid").exists()


def test_a_stage_working_beside_the_run_still_reads_the_runs_other_files(song_run, capsys):
    (song_run / "clip.mp4").write_text("my own clip")
    code, out, err = call("animate", str(song_run / "score.txt"), "-o", "x.mp4", capsys=capsys)
    assert code == 0, err
    assert (song_run / "clip.mp4").read_text() == "my own clip"
    assert Path("x.mp4").read_text() == f"clip of {SCORE} + midi of {SCORE}"  # the run's midi


def test_another_input_is_not_copied_over_the_runs_file(song_run, tmp_path, capsys):
    other = tmp_path / "other.mid"
    other.write_text("another midi")
    before = snapshot(song_run)
    code, out, err = call(
        "animate", str(song_run / "score.txt"), "--midi", str(other), "-o", "x.mp4", capsys=capsys
    )
    assert code == 0, err
    assert Path("x.mp4").read_text() == f"clip of {SCORE} + another midi"
    assert snapshot(song_run) == before


def test_an_explicit_workdir_is_used_as_given(song_run, capsys):
    code, out, err = call(
        "polish", str(song_run / "score.txt"), "--workdir", str(song_run), capsys=capsys
    )
    assert code == 0, err
    assert (song_run / "score.txt").read_text() == "polished " + SCORE


# -- 2. ACGMAKE_DEBUG shows a broken plugin's traceback -----------------------------------------


@pytest.fixture
def crashy_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    source = textwrap.dedent(
        """
        def load_models():
            raise ImportError("no numpy 9")

        load_models()
        """
    )
    (root / "crashyplug.py").write_text(source)
    info = root / "acgmake_crashy-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acgmake-crashy\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[acgmake]\ncrashyplug = crashyplug\n")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delenv(plugin_module.ENV_VAR, raising=False)
    monkeypatch.setattr(plugin_module, "DEFAULT_PLUGINS", ())
    plugin_module.reset()
    yield root
    sys.modules.pop("crashyplug", None)
    plugin_module.reset()


def test_acgmake_debug_prints_the_traceback_of_a_plugin_that_fails_at_import(crashy_site):
    runner = CliRunner()
    quiet = runner.invoke(cli, ["plugins"], env={"ACGMAKE_DEBUG": None})
    assert quiet.exit_code == 0
    assert "Warning: plugin acgmake-crashy is broken" in quiet.stderr
    assert "Traceback" not in quiet.stderr
    plugin_module.reset()
    loud = runner.invoke(cli, ["plugins"], env={"ACGMAKE_DEBUG": "1"})
    assert loud.exit_code == 0
    assert "Traceback (most recent call last)" in loud.stderr
    assert "crashyplug.py" in loud.stderr and "load_models" in loud.stderr
    assert "ImportError: no numpy 9" in loud.stderr
    assert "Traceback" not in loud.stdout  # the JSON stays JSON
    json.loads(loud.stdout)


def test_a_plugin_whose_hook_raises_keeps_its_traceback(make_plugin):
    from acgmake.plugins import Plugins

    def register_stages(register):
        raise ValueError("half registered")

    plugins = Plugins()
    plugins.add(make_plugin("acgmake_half", register_stages=register_stages), "acgmake-half")
    plugins._collect()
    info = plugins.infos["acgmake-half"]
    assert info.broken and "ValueError: half registered" in info.traceback
    assert "register_stages" in info.traceback


# -- 3. the licence and the third-party notices ----------------------------------------------


def test_the_licence_and_the_notices_are_there_and_name_what_acgmake_uses():
    licence = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert licence.startswith("MIT License") and "the acgmake authors" in licence
    notices = (ROOT / "THIRD_PARTY_NOTICES.md").read_text(encoding="utf-8")
    for name in (
        "drawn64.safetensors", "colorizer128.safetensors", "attributes64.safetensors",
        "realesr-animevideov3", "waifu2x", "TimGM6mb", "GPL-2.0", "IPAexGothic",
        "IPA Font License", "Sinsy", "nitech_jp_song070_f001", "CC BY 3.0", "BSD-3-Clause",
        "pyopenjtalk", "sudachidict_core", "ffmpeg", "GPL-3.0-or-later", "torch",
    ):  # fmt: skip
        assert name in notices, name
    # Every credit line acgmake writes into manifest.json is quoted there, word for word.
    from acgmake.audio.soundfont import DEFAULT_SOUNDFONT_CREDIT
    from acgmake.image.upscale import UPSCALERS
    from acgmake.models.reproduce import CREDIT
    from acgmake.video.text import FONT_CREDIT
    from acgmake.voice.sinsy import SINSY_CREDIT, VOICE_CREDIT
    from acgmake.voice.sinsy_online import ONLINE_CREDIT

    flat = " ".join(notices.split())
    credits = [DEFAULT_SOUNDFONT_CREDIT, CREDIT, FONT_CREDIT, SINSY_CREDIT, VOICE_CREDIT]
    credits += [ONLINE_CREDIT, *(upscaler.credit for upscaler in UPSCALERS.values())]
    for credit in credits:
        assert credit in flat, credit


def test_version_and_doctor_point_to_the_notices(capsys):
    code, out, err = call("--version", capsys=capsys)
    assert code == 0, err
    first, second = out.splitlines()
    assert first == "acgmake, version 0.1.0"
    assert "MIT" in second and "THIRD_PARTY_NOTICES.md" in second
    assert Path(second.rsplit(": ", 1)[1]).is_file()

    import acgmake.doctor as doctor

    assert "licences" in [name for name, *_ in doctor.CHECKS]
    detail = doctor._licences()
    # The notices the installed metadata holds (a wheel, or an editable install that copied
    # them), else the checkout's: either way the same text as the repository's file.
    shown = re.search(r"(\S*THIRD_PARTY_NOTICES\.md)", detail)
    assert "MIT" in detail and shown is not None
    notices = (ROOT / "THIRD_PARTY_NOTICES.md").read_text(encoding="utf-8")
    assert Path(shown.group(1)).read_text(encoding="utf-8") == notices


# -- 4. the compose report after a plain install ---------------------------------------------


def test_the_compose_report_finds_the_examples_when_acgmake_is_installed_elsewhere(
    tmp_path, monkeypatch, capsys
):
    import acgmake.music.report as report

    # A plain `pip install .` puts the package in site-packages, far from examples/.
    installed = tmp_path / "site-packages" / "acgmake" / "music" / "report.py"
    monkeypatch.setattr(report, "__file__", str(installed))
    monkeypatch.setattr(sys, "argv", ["compose_report.py"])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(ROOT / "benchmarks" / "compose_report.py"), run_name="__main__")
    assert done.value.code in (0, None)
    out = capsys.readouterr().out
    for example in sorted((ROOT / "examples").glob("*.txt")):
        assert re.search(rf"^{re.escape(example.name)}\s+\d+\s+1\.000", out, re.M), out


# -- 5. section labels above the staff, in the XML and as MuseScore engraves them -------------

LYRICS = "[verse]\nかえるの うたが\nきこえて くるよ\n\n[chorus]\nけろけろ けろけろ\nくわくわ くわ\n"


def composed_score(tmp_path: Path) -> Path:
    from acgmake.music.melody import compose_melody
    from acgmake.music.musicxml import write_musicxml
    from acgmake.text.lyrics import read_lyrics

    lyrics = tmp_path / "song.txt"
    lyrics.write_text(LYRICS, encoding="utf-8")
    score = tmp_path / "score.musicxml"
    write_musicxml(compose_melody(read_lyrics(lyrics), seed=0), score)
    return score


def rehearsal_measures(score: Path) -> dict[int, str]:
    """Measure number -> the rehearsal mark in it; asserts each sits above the staff."""
    import xml.etree.ElementTree as ET

    marks = {}
    for measure in ET.parse(score).getroot().iter("measure"):
        for direction in measure.iter("direction"):
            rehearsal = direction.find("direction-type/rehearsal")
            if rehearsal is not None:
                assert direction.get("placement") == "above", ET.tostring(direction)
                marks[int(measure.get("number"))] = rehearsal.text
    return marks


def test_the_section_labels_are_rehearsal_marks_placed_above(tmp_path):
    marks = rehearsal_measures(composed_score(tmp_path))
    assert sorted(marks.values()) == ["Chorus", "Verse"]


MSCORE = shutil.which("mscore3") or shutil.which("musescore3")


def _engrave(score: Path, output: Path) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(output.parent)}
    done = subprocess.run(
        [MSCORE, "-o", str(output), str(score)], env=env, capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]


def _extent(path_data: str) -> tuple[float, float, float, float]:
    numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", path_data)]
    xs, ys = numbers[0::2], numbers[1::2]
    return min(xs), min(ys), max(xs), max(ys)


@pytest.mark.skipif(
    MSCORE is None,
    reason="MuseScore 3 is not installed (apt-get install musescore3; .ci/run installs it)",
)
def test_musescore_engraves_the_score_with_the_section_labels_above_the_staff(tmp_path):
    score = composed_score(tmp_path)
    marks = rehearsal_measures(score)
    _engrave(score, tmp_path / "score.pdf")
    assert (tmp_path / "score.pdf").read_bytes()[:5] == b"%PDF-"
    _engrave(score, tmp_path / "score.svg")
    _engrave(score, tmp_path / "score.mpos")  # each measure's box on the page, in 1/10 px
    import xml.etree.ElementTree as ET

    svg = (tmp_path / "score-1.svg").read_text(encoding="utf-8")
    labels = [_extent(d) for d in re.findall(r'<path class="RehearsalMark"[^>]* d="([^"]+)"', svg)]
    assert labels, "MuseScore drew no rehearsal mark"
    measures = [
        {key: float(element.get(key)) / 10 for key in ("x", "y", "sx", "sy")}
        for element in ET.parse(tmp_path / "score.mpos").getroot().iter("element")
    ]
    for number, text in marks.items():
        measure = measures[number - 1]  # the measures of the one part, in order
        staff_top = measure["y"]
        # The label is centred on its measure's start; it must end above that measure's
        # staff, close to it (not under the lyrics of the system before).
        above = [
            (left, top, right, bottom)
            for left, top, right, bottom in labels
            if left <= measure["x"] <= right and staff_top - 4 * measure["sy"] < bottom <= staff_top
        ]
        assert above, f"{text} (measure {number}) is not engraved above its staff"
