"""The svs_export stage: every project file reopens with the score's notes, lyrics and tempo."""

from __future__ import annotations

import pytest
from acgmake_svs_export import FORMATS, TICKS_PER_QUARTER, project_notes

from acgmake import UserError
from acgmake.music.musicxml import read_score
from acgmake.pipeline import plan, run
from acgmake.testing import plugins_loaded, run_stage

LYRICS = "[verse]\n星(ほし)が 光る 夜に\nI love you ゆめー\n\n[chorus]\nきらきら ひかる\n"


@pytest.fixture(scope="module")
def score(tmp_path_factory):
    folder = tmp_path_factory.mktemp("svs")
    lyrics = folder / "song.txt"
    lyrics.write_text(LYRICS, encoding="utf-8")
    made = run_stage("compose", {"lyrics": lyrics}, {"time_signature": "3/4", "style": "ballad"},
                     workdir=folder / "compose", seed=2)  # fmt: skip
    return made["score"]


def test_each_editor_file_reopens_with_the_scores_notes_lyrics_tempo_and_metre(score, tmp_path):
    from libresvip.extension.manager import get_svs_plugin_by_value

    made = run_stage("svs_export", {"score": score}, plugins=["acgmake_svs_export"],
                     workdir=tmp_path / "run")  # fmt: skip
    assert set(made) == set(FORMATS)
    written = read_score(score)
    expected = [
        (n.lyric, n.midi, round(n.offset * TICKS_PER_QUARTER),
         round(n.quarter_length * TICKS_PER_QUARTER))
        for n in written.sung_notes() if n.lyric
    ]  # fmt: skip
    assert len(expected) > 20 and any(lyric == "ー" for lyric, *_ in expected)
    for kind, path in made.items():
        project = get_svs_plugin_by_value(kind).load(path, {})
        assert project_notes(project) == expected, kind
        assert project.song_tempo_list[0].bpm == pytest.approx(written.tempo_bpm), kind
        metre = project.time_signature_list[0]
        if kind != "ust":  # UTAU's .ust has no time signature: UTAU shows every song in 4/4
            assert (metre.numerator, metre.denominator) == (3, 4), kind
    # UTAU reads Shift-JIS: the kana must be there in it.
    ust = made["ust"].read_bytes().decode("shift_jis")
    assert "Lyric=ほ" in ust and "Charset=SHIFT_JIS" in ust


def test_the_export_runs_in_the_chain_when_asked_and_only_then(tmp_path):
    lyrics = tmp_path / "song.txt"
    lyrics.write_text("かえるの うたが\n", encoding="utf-8")
    with plugins_loaded("acgmake_svs_export") as registry:
        assert registry.stage("svs_export").optional  # `acgmake song --also svs_export`
        result = run(registry, tmp_path / "run", ["ustx", "svp"], inputs={"lyrics": lyrics})
        # Not asked for, it is left out: a run for the score alone does not export it.
        assert "svs_export" not in [s.name for s in plan(registry, ["score"], {"lyrics"})]
    assert [stage.name for stage in result.stages] == ["compose", "svs_export"]
    assert result.files["ustx"].stat().st_size > 1000


def test_a_score_that_is_not_musicxml_is_one_clear_error(tmp_path):
    bad = tmp_path / "score.musicxml"
    bad.write_text("<html>not a score</html>", encoding="utf-8")
    with pytest.raises(UserError) as caught:
        run_stage("svs_export", {"score": bad}, plugins=["acgmake_svs_export"],
                  workdir=tmp_path / "run")  # fmt: skip
    assert "\n" not in str(caught.value)
