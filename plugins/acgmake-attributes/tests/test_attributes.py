"""find-character: the characters it chooses are what was asked, as a held-out judge reads
them, where the first seed of the range mostly is not."""

from __future__ import annotations

import json
import subprocess

import pytest
from acgmake_attributes import HAIR, Wanted, find, hair_colour, judge

from acgmake import UserError
from acgmake.testing import run_command


@pytest.mark.parametrize(("hair", "mouth"), [("blue", "open"), ("blonde", "closed")])
def test_the_judge_reads_the_asked_hair_and_mouth_in_what_is_found(hair, mouth):
    wanted = Wanted(hair=HAIR[hair], mouth=mouth, eyes="open")
    found, pictures = find(wanted, search=256, start=5000, count=3)
    assert len(found) == len(pictures) == 3
    assert found[0].score <= found[1].score <= found[2].score
    read = judge(pictures[:1], wanted)
    assert read["hair_median_delta_e"] < 20 and read["mouth_as_asked"] == 1.0
    assert read["eyes_as_asked"] == 1.0
    # The seeds it looked through hold what it found: seed N draws the same character again.
    again, _ = find(Wanted(hair=HAIR[hair], mouth=mouth), search=1, start=found[0].seed, count=1)
    assert again[0].hair == found[0].hair


def test_the_judges_read_the_asked_eye_colour_in_what_is_found():
    wanted = Wanted(eye_color="red", accessories={"glasses": False})
    found, pictures = find(wanted, search=512, start=7000, count=2)
    assert found[0].tags["eye_color:red"] > 0.5 and found[0].tags["glasses"] < 0.5
    read = judge(pictures[:1], wanted)
    assert read["eye_color_as_asked"] == 1.0 and read["glasses_as_asked"] == 1.0
    # Without a choice, few of the first seeds of the range have red eyes.
    _, plain = find(Wanted(eyes=None), search=8, start=7000, count=8)
    assert judge(plain, wanted)["eye_color_as_asked"] < 0.5


def test_the_command_prints_the_seeds_and_writes_a_grid(tmp_path):
    grid = tmp_path / "grid.png"
    ran = _acgmake("find-character", "--hair", "#50a050", "--search", "64", "--count", "4",
                   "-o", str(grid))  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    lines = [json.loads(line) for line in ran.stdout.splitlines()]
    assert len(lines) == 4 and all(0 <= line["seed"] < 64 for line in lines)
    assert grid.stat().st_size > 1000 and not list(tmp_path.glob("*.partial"))


def test_bad_requests_are_one_clear_line():
    with pytest.raises(UserError, match="not a colour"):
        hair_colour("sky")
    ran = _acgmake("find-character", "--eyes", "any")
    error = ran.stderr
    assert ran.returncode == 1 and "ask for something" in error and "Traceback" not in error
    ran = _acgmake("find-character", "--eyes", "plaid")
    assert ran.returncode == 1 and "give open, closed, any or an eye colour" in ran.stderr
    ran = _acgmake("find-character", "--smile", "--mouth", "open")
    assert ran.returncode == 1 and "--smile is a closed mouth" in ran.stderr
    with pytest.raises(UserError, match="--search must be"):
        find(Wanted(hair=HAIR["red"]), search=0)


def _acgmake(*arguments: str) -> subprocess.CompletedProcess:
    """The command line as a user runs it, in a process of its own (the plugin's command is
    registered when acgmake starts, whatever other tests did to this process's CLI)."""
    return run_command(*arguments, plugins=["acgmake-attributes"], timeout_s=300)
