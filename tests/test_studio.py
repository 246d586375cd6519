"""`acgmake studio`: the web page's API over a real run folder, and its safety rules.

One run folder for the file (a character drawn and enlarged, ~5 s); every security case is
tried against the real application with Starlette's TestClient, each with a request that the
same test shows is answered when the case's one fault is taken away (so each check can fail).
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient  # needs httpx2 (the test extra)

from acgmake.errors import UserError
from acgmake.pipeline import RunFolder
from acgmake.studio.app import create_app
from acgmake.studio.security import cookie_name, run_file
from acgmake.studio.work import Job, JobReporter, Stopped, Studio

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

TOKEN = "test-token-0123456789"
PORT = 45678
BASE = f"http://127.0.0.1:{PORT}"
SEED = 3
LYRICS = "かえるのうたが\nきこえてくるよ\n"
SECRET = "the content of a file outside the run folder"


@pytest.fixture(scope="module")
def studio(tmp_path_factory) -> Studio:
    """A studio on a run folder holding lyrics and character SEED (768 px), and a secret file
    beside the run folder (which must never be served)."""
    root = tmp_path_factory.mktemp("studio")
    (root / "secret.txt").write_text(SECRET)
    folder = root / "song.acgmake"
    work = Studio(folder)
    work.write("lyrics", LYRICS.encode())
    work.choose_character(SEED, 0.7)
    return work


@pytest.fixture
def client(studio: Studio) -> TestClient:
    return TestClient(create_app(studio, token=TOKEN, port=PORT), base_url=BASE)


H = {"X-Studio-Token": TOKEN}


def hints_png(size: tuple[int, int], colour: tuple[int, int, int], at=(0.5, 0.24)) -> bytes:
    """A transparent layer with a blob of ``colour`` at ``at`` (fractions of width, height)."""
    width, height = size
    layer = np.zeros((height, width, 4), np.uint8)
    x, y, r = int(at[0] * width), int(at[1] * height), max(4, width // 50)
    layer[y - r : y + r, x - r : x + r] = (*colour, 255)
    buffer = io.BytesIO()
    Image.fromarray(layer).save(buffer, format="PNG")
    return buffer.getvalue()


def png_of(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


# -- who may ask ---------------------------------------------------------------------------------


def test_every_request_needs_the_token(client):
    assert client.get("/api/state").status_code == 403
    assert client.get("/api/state", headers={"X-Studio-Token": "wrong"}).status_code == 403
    assert client.get("/").status_code == 403
    assert client.get("/static/studio.js").status_code == 403
    assert client.get("/api/state", headers=H).status_code == 200


def test_the_opening_address_sets_a_cookie_of_this_port_and_leaves_the_address_bar(client):
    answer = client.get(f"/?token={TOKEN}", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{cookie_name(PORT)}={TOKEN}")
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    client.cookies.clear()
    assert client.get("/?token=wrong").status_code == 403
    # The cookie lets the page and its pictures load (GET), and the page carries the token
    # for the requests that change things.
    cookies = {cookie_name(PORT): TOKEN}
    page = client.get("/", cookies=cookies)
    assert page.status_code == 200 and TOKEN in page.text
    assert client.get("/api/state", cookies=cookies).status_code == 200
    assert client.get("/api/state", cookies={cookie_name(PORT + 1): TOKEN}).status_code == 403


def test_a_change_needs_the_header_not_only_the_cookie(client):
    """A cookie goes with a form another site posts here; the header cannot (CSRF)."""
    cookies = {cookie_name(PORT): TOKEN}
    answer = client.put("/api/lyrics", content=LYRICS.encode(), cookies=cookies)
    assert answer.status_code == 403
    assert client.put("/api/lyrics", content=LYRICS.encode(), headers=H).status_code == 200


@pytest.mark.parametrize(
    "host", ["evil.example", f"evil.example:{PORT}", f"127.0.0.1:{PORT + 1}", "127.0.0.1"]
)
def test_another_host_name_is_refused_dns_rebinding(client, host):
    assert client.get("/api/state", headers={**H, "Host": host}).status_code == 403
    assert client.get("/api/state", headers={**H, "Host": f"localhost:{PORT}"}).status_code == 200


@pytest.mark.parametrize("origin", ["http://evil.example", f"http://127.0.0.1:{PORT + 1}", "null"])
def test_another_origin_is_refused(client, origin):
    answer = client.put("/api/lyrics", content=LYRICS.encode(), headers={**H, "Origin": origin})
    assert answer.status_code == 403
    assert client.get("/api/state", headers={**H, "Origin": origin}).status_code == 403
    own = client.put("/api/lyrics", content=LYRICS.encode(), headers={**H, "Origin": BASE})
    assert own.status_code == 200


def test_a_cross_site_fetch_is_refused(client):
    for site, status in (("cross-site", 403), ("same-origin", 200), ("none", 200)):
        answer = client.get("/api/state", headers={**H, "Sec-Fetch-Site": site})
        assert answer.status_code == status, site


def test_the_server_binds_loopback_only():
    from acgmake.stages.studio import HOST, free_port

    assert HOST == "127.0.0.1"
    assert 0 < free_port() < 65536


# -- which files ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "..%2Fsecret.txt",
        "%2e%2e/secret.txt",
        "%2E%2E%2Fsecret.txt",
        "stages/..%2F..%2Fsecret.txt",
        "%2Fetc%2Fpasswd",
        "%2F%2Fetc%2Fpasswd",
        "..%5Csecret.txt",
        ".lock",
        ".hashes.json",
        "link-out.txt",
        "linked-folder/secret.txt",
        "stages",
        "nothing-here.png",
    ],
)
def test_no_file_outside_the_run_folder_is_served(client, studio, name):
    outside = studio.folder.parent / "secret.txt"
    for link, target in (("link-out.txt", outside), ("linked-folder", outside.parent)):
        if not (studio.folder / link).is_symlink():
            (studio.folder / link).symlink_to(target)
    (studio.folder / "stages").mkdir(exist_ok=True)
    answer = client.get(f"/api/files/{name}", headers=H)
    assert answer.status_code in (400, 404), answer.status_code
    assert SECRET not in answer.text and "root:" not in answer.text
    assert client.get("/api/files/lyrics.txt", headers=H).status_code == 200


def test_run_file_refuses_names_that_lead_out(studio, tmp_path):
    folder = studio.folder
    for name in ["../secret.txt", "/etc/passwd", "a/../../secret.txt", "", ".", "x\\..\\y"]:
        with pytest.raises(UserError):
            run_file(folder, name)
    assert run_file(folder, "character.png") == (folder / "character.png").resolve()


def test_files_are_served_with_their_types_and_ranges(client):
    picture = client.get("/api/files/character.png", headers=H)
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    assert picture.headers["x-content-type-options"] == "nosniff"
    part = client.get("/api/files/character.png", headers={**H, "Range": "bytes=0-7"})
    assert part.status_code == 206 and part.content == b"\x89PNG\r\n\x1a\n"
    lyrics = client.get("/api/files/lyrics.txt", headers=H)
    assert lyrics.headers["content-type"].startswith("text/plain")


def test_the_state_lists_the_run_folders_files_and_stages(client):
    state = client.get("/api/state", headers=H).json()
    assert state["seed"] == SEED
    assert {"lyrics", "character", "face"} <= set(state["files"])
    assert state["files"]["character"]["file"] == "character.png"
    assert "character" in state["stages"] and "upscale" in state["stages"]
    assert state["busy"] is False


# -- uploads ---------------------------------------------------------------------------------------


def _size(studio: Studio) -> tuple[int, int]:
    with Image.open(studio.file("character")) as picture:
        return picture.size


@pytest.mark.parametrize(
    "what, body, status",
    [
        ("text", b"not a picture", 400),
        ("jpeg", "jpeg", 400),
        ("png without alpha", "rgb", 400),
        ("wrong size", "small", 400),
        ("a PNG declaring 36 megapixels", "bomb", 400),
        ("PNG magic, broken body", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, 400),
    ],
)
def test_a_bad_hints_upload_is_refused_and_changes_nothing(client, studio, what, body, status):
    width, height = _size(studio)
    if body == "jpeg":
        buffer = io.BytesIO()
        Image.new("RGB", (width, height)).save(buffer, format="JPEG")
        body = buffer.getvalue()
    elif body == "rgb":
        body = png_of(np.zeros((height, width, 3), np.uint8))
    elif body == "small":
        body = hints_png((width // 2, height // 2), (255, 0, 0))
    elif body == "bomb":
        buffer = io.BytesIO()
        Image.new("1", (6000, 6000)).save(buffer, format="PNG")  # a few KB
        body = buffer.getvalue()
    hints = studio.file("hints")
    before = hints.read_bytes() if hints.is_file() else None
    answer = client.put("/api/hints", content=body, headers={**H, "Content-Type": "image/png"})
    assert answer.status_code == status, (what, answer.text)
    assert "\n" not in answer.json()["error"]
    assert (hints.read_bytes() if hints.is_file() else None) == before


def test_an_oversized_upload_is_refused_before_it_is_read(client):
    big = b"\x89PNG\r\n\x1a\n" + b"\0" * (17 * 1024 * 1024)
    answer = client.put("/api/hints", content=big, headers={**H, "Content-Type": "image/png"})
    assert answer.status_code == 413
    answer = client.put("/api/lyrics", content=b"a" * 70_000, headers=H)
    assert answer.status_code == 413


def test_painted_hints_are_saved_as_the_cli_reads_them_and_change_colored_where_painted(
    client, studio
):
    from acgmake.image.hints import read_hints

    size = _size(studio)
    width, height = size
    x, y, r = int(0.5 * width), int(0.24 * height), max(4, width // 50)
    means = {}
    for name, colour in (("blue", (20, 40, 230)), ("red", (230, 30, 30))):
        upload = hints_png(size, colour)
        started = time.monotonic()
        answer = client.put(
            "/api/hints", content=upload, headers={**H, "Content-Type": "image/png"}
        )
        seconds = time.monotonic() - started
        assert answer.status_code == 200, answer.text
        print(f"stroke -> colored.png ({width} px, {name}): {seconds:.2f} s")
        assert studio.file("hints").read_bytes() == upload
        assert read_hints(studio.file("hints"), size).mask[y, x]
        colored = np.asarray(Image.open(studio.file("colored")).convert("RGB")).astype(float)
        means[name] = colored[y - r : y + r, x - r : x + r].mean(axis=(0, 1))
    assert means["blue"][2] - means["blue"][0] > 60, means
    assert means["red"][0] - means["red"][2] > 60, means
    # Erasing every stroke takes the hints file away (colorize goes back to its palette).
    empty = png_of(np.zeros((height, width, 4), np.uint8))
    answer = client.put("/api/hints", content=empty, headers={**H, "Content-Type": "image/png"})
    assert answer.status_code == 200 and not studio.file("hints").exists()


# -- one run at a time ---------------------------------------------------------------------------


def test_a_second_change_while_one_runs_is_answered_busy(client, studio):
    with studio.working():
        answer = client.put("/api/lyrics", content=LYRICS.encode(), headers=H)
        assert answer.status_code == 409 and "another run" in answer.json()["error"]
        assert client.post("/api/compose", headers=H).status_code == 409
        assert client.get("/api/state", headers=H).json()["busy"] is True
    assert client.put("/api/lyrics", content=LYRICS.encode(), headers=H).status_code == 200


def test_two_tabs_composing_at_once_one_runs_one_is_told(client, studio):
    answers = []
    barrier = threading.Barrier(2)

    def tab():
        barrier.wait()
        answers.append(client.post("/api/compose", headers=H).status_code)

    threads = [threading.Thread(target=tab) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 200 in answers and set(answers) <= {200, 409}
    assert RunFolder(studio.folder, studio.registry).manifest()["stages"]["compose"]


def test_a_command_line_run_in_the_folder_keeps_the_studio_out(client, studio):
    with RunFolder(studio.folder, studio.registry).lock():
        answer = client.post("/api/compose", headers=H)
    assert answer.status_code == 400 and "another acgmake" in answer.json()["error"]


# -- lyrics, compose, score ----------------------------------------------------------------------


def test_lyrics_are_saved_where_the_cli_reads_them_with_their_readings(client, studio):
    text = "かえるのうたが\n待てど暮らせど 来ぬ人を\n"
    answer = client.put("/api/lyrics", content=text.encode(), headers=H).json()
    assert studio.file("lyrics").read_text(encoding="utf-8") == text
    assert client.get("/api/lyrics", headers=H).json()["text"] == text
    first, second = answer["readings"]
    assert "".join(first["morae"]) == "かえるのうたが" and not any(first["guessed"])
    assert any(second["guessed"]) and "来" in second["guesses"][0]
    # the furigana the page offers for the guess: keep the reading sung now, or the other
    choice = second["choices"][0]
    assert choice["written"] == "来" and {choice["sung"], choice["other_reading"]} == {"こ", "き"}
    assert choice["keep"] == f"来({choice['sung']})"
    assert choice["other"] == f"来({choice['other_reading']})"
    # ... and written into the lyrics, the other reading is sung and no longer a guess
    chosen = text.replace("来", choice["other"])
    again = client.put("/api/lyrics", content=chosen.encode(), headers=H).json()["readings"][1]
    assert not any(again["guessed"])
    assert choice["other_reading"] + "ぬ" in "".join(again["morae"])
    bad = client.put("/api/lyrics", content="\ud55c\uad6d\uc5b4\n".encode(), headers=H).json()
    assert bad["problem"] and bad["readings"] == []
    assert client.put("/api/lyrics", content=b"\xff\xfe", headers=H).status_code == 400
    client.put("/api/lyrics", content=LYRICS.encode(), headers=H)


def test_compose_makes_the_score_and_the_page_shows_it(client, studio):
    assert client.post("/api/compose", headers=H).status_code == 200
    assert studio.file("score").is_file()
    svg = client.get("/api/score.svg", headers=H)
    if svg.status_code == 400:
        pytest.skip(svg.json()["error"])  # Verovio not installed
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in svg.content
    # The lyrics come with their own font (a picture loads nothing from elsewhere): every
    # kana of the song has its glyph in the font the SVG carries, which its policy allows.
    import base64
    import re

    from fontTools.ttLib import TTFont

    text = svg.content.decode()
    assert "font-src data:" in svg.headers["content-security-policy"]
    assert "script" not in svg.headers["content-security-policy"]
    font = re.search(r"url\(data:font/ttf;base64,([A-Za-z0-9+/=]+)\)", text)
    assert font, "no font in the score"
    cmap = TTFont(io.BytesIO(base64.b64decode(font.group(1)))).getBestCmap()
    sung = {c for c in LYRICS if not c.isspace()}
    assert all(ord(c) in cmap for c in sung)
    assert len(cmap) < 200  # only what the score shows, not the whole font
    assert "g.syl text" in text


# -- characters ----------------------------------------------------------------------------------


def test_character_previews_are_what_acgmake_characters_draws(client):
    from acgmake.image.upscale import upscale
    from acgmake.models.character import one_thread
    from acgmake.stages.character import _generator_and_edits, _styles
    from acgmake.studio.work import PREVIEW_PX

    answer = client.get("/api/characters/5.png?truncation=0.5", headers=H)
    assert answer.status_code == 200 and answer.content.startswith(b"\x89PNG")
    preview = np.asarray(Image.open(io.BytesIO(answer.content)).convert("RGB"))
    generator, draw = _generator_and_edits("", "")
    with one_thread():
        drawn = draw(_styles(generator, [5], 0.5)[0])  # as `acgmake characters` draws seed 5
        expected = upscale(drawn, size_px=PREVIEW_PX)
    assert preview.shape == (PREVIEW_PX, PREVIEW_PX, 3) and drawn.shape[0] < PREVIEW_PX
    assert np.array_equal(preview, expected)
    assert client.get("/api/characters/5.png?truncation=9", headers=H).status_code == 400
    assert client.get("/api/characters/-1.png", headers=H).status_code == 400


def test_the_learned_edits_go_to_the_character_stage_as_its_edit_option(client, studio):
    import json

    seed = client.get("/api/state", headers=H).json()["seed"]
    manifest = studio.folder / "manifest.json"
    try:
        answer = client.post(
            "/api/character", json={"seed": seed, "edit": {"mouth": 1, "eyes": 0}}, headers=H
        )
        assert answer.status_code == 200 and answer.json()["edit"] == "mouth=1.00"
        record = json.loads(manifest.read_text())["stages"]["character"]
        assert record["params"]["edit"] == "mouth=1.00"
    finally:  # the other tests' character again
        assert client.post("/api/character", json={"seed": seed}, headers=H).status_code == 200
    assert json.loads(manifest.read_text())["stages"]["character"]["params"]["edit"] == ""


def test_the_options_of_the_clips_stages_are_listed_and_set_as_the_command_line_takes_them(
    client,
):
    def listed() -> dict[tuple[str, str], dict]:
        answer = client.get("/api/options", headers=H)
        assert answer.status_code == 200
        return {(o["stage"], o["name"]): o for o in answer.json()["options"]}

    options = listed()
    assert options[("compose", "style")]["kind"] == "choice"
    assert "ballad" in options[("compose", "style")]["choices"]
    assert options[("animate", "furigana")]["kind"] == "bool"
    assert options[("animate", "size")]["value"] == "1280x720"
    assert options[("upscale", "upscale_size")]["value"] == 768  # worked out from the size
    try:
        answer = client.put(
            "/api/options", json={"options": {"animate": {"size": "1080p"}}}, headers=H
        )
        assert answer.status_code == 200
        options = listed()
        assert options[("animate", "size")]["value"] == "1080p"
        assert options[("animate", "size")]["set"] is True
        # what the command line works out from --size, the page does too
        assert options[("upscale", "upscale_size")]["value"] == 1024
    finally:
        answer = client.put(
            "/api/options", json={"options": {"animate": {"size": None}}}, headers=H
        )
        assert answer.status_code == 200
    options = listed()
    assert options[("animate", "size")]["value"] == "1280x720"
    assert not options[("animate", "size")]["set"]


@pytest.mark.parametrize(
    "given, says",
    [
        ({"nosuch": {"x": 1}}, "no stage"),
        ({"animate": {"nosuch": 1}}, "has no option"),
        ({"compose": {"style": "polka"}}, "--style"),
        ({"animate": {"fps": "fast"}}, "--fps"),
        ({"animate": {"size": "7x7"}}, "--size"),
        ({"accompany": {"soundfont": "/etc/passwd"}}, "names a file"),
        ({"animate": {"background": "../secret.txt"}}, "names a file"),
        ({"animate": "1080p"}, "must be"),
        ({"colorize": {"palette": ["sky"]}}, "number or text"),
        ({"colorize": {"palette": {"hair": "#fff"}}}, "number or text"),
        ({"animate": {"fps": True}}, "number or text"),
        ({"compose": {"tempo": "9" * 5000}}, "at most"),
    ],
)
def test_a_bad_option_is_one_line_and_sets_nothing(client, studio, given, says):
    before = {name: dict(values) for name, values in studio.options.items()}
    answer = client.put("/api/options", json={"options": given}, headers=H)
    assert answer.status_code == 400
    assert says in answer.json()["error"] and "\n" not in answer.json()["error"]
    assert studio.options == before


def test_a_studio_goes_on_with_the_options_the_run_folder_was_made_with(tmp_path):
    import json

    folder = tmp_path / "run.acgmake"
    folder.mkdir()
    record = {"key": "k", "outputs": {}, "inputs": {}}  # the shape of a stage's record
    stages = {
        "animate": {**record, "params": {"size": "1080p", "fps": 24}},  # fps 24: the default
        "compose": {**record, "params": {"style": "no such style"}},  # not valid now: left out
        # a file given on the command line is kept (the page itself names no files)
        "accompany": {**record, "params": {"soundfont": str(tmp_path / "band.sf2")}},
    }
    (tmp_path / "band.sf2").write_bytes(b"RIFF")
    (folder / "manifest.json").write_text(json.dumps({"format": 1, "seed": 5, "stages": stages}))
    work = Studio(folder)
    assert work.seed == 5
    assert work.options == {
        "animate": {"size": "1080p"},
        "accompany": {"soundfont": str(tmp_path / "band.sf2")},
    }


def test_a_bad_character_choice_is_one_line(client):
    for given in ({"seed": "x"}, {"seed": 1.5}, {"seed": 2**32}, {"seed": 1, "truncation": 3},
                  {"seed": 1, "edit": {"hair": 1}}, {"seed": 1, "edit": {"mouth": 5}}):  # fmt: skip
        answer = client.post("/api/character", json=given, headers=H)
        assert answer.status_code == 400 and "\n" not in answer.json()["error"]


# -- background runs -----------------------------------------------------------------------------


def test_the_job_reporter_records_stages_and_stops_the_run_when_asked():
    from acgmake.pipeline import Stage

    stage = Stage("compose", ("lyrics",), ("score",), lambda ctx: None)
    job, stop = Job(["clip"]), threading.Event()
    reporter = JobReporter(job, threading.Lock(), stop)
    reporter.stage_started(1, 3, stage)
    reporter.stage_progress(stage, 2, 4, "bars")
    assert job.as_dict()["stages"][0] | {"done": 2, "total": 4} == job.as_dict()["stages"][0]
    reporter.stage_finished(stage, 1.0, cached=False)
    assert job.stages[0]["state"] == "done"
    stop.set()
    with pytest.raises(Stopped):
        reporter.stage_progress(stage, 3, 4, "")


@pytest.mark.slow
def test_the_page_renders_the_clip_with_progress_and_serves_it(client, studio):
    started = client.post("/api/render", json={"target": "clip"}, headers=H)
    assert started.status_code == 202
    assert client.post("/api/render", json={"target": "clip"}, headers=H).status_code == 409
    seen = set()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        job = client.get("/api/job", headers=H).json()["job"]
        seen |= {stage["name"] for stage in job["stages"]}
        if job["state"] != "running":
            break
        time.sleep(0.5)
    assert job["state"] == "done", job
    assert {"sing", "mix", "animate"} <= seen
    video = client.get("/api/files/clip.mp4", headers={**H, "Range": "bytes=0-99"})
    assert video.status_code == 206 and video.headers["content-type"] == "video/mp4"


# -- the command ---------------------------------------------------------------------------------


def test_acgmake_starts_without_loading_the_web_server():
    code = "import sys, acgmake.cli; acgmake.cli.get_plugins(); print('starlette' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _start(folder: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "acgmake", "studio", str(folder), "--no-browser", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "ACGMAKE_PLUGINS": ""},
    )
    line = process.stdout.readline()
    address = line[line.index("http://") :].strip()
    return process, address


def test_the_command_serves_the_page_and_stops_cleanly_on_ctrl_c(tmp_path):
    lyrics = tmp_path / "song.txt"
    lyrics.write_text(LYRICS, encoding="utf-8")
    process, address = _start(lyrics)
    try:
        assert address.startswith("http://127.0.0.1:")
        base, token = address.split("/?token=")
        request = urllib.request.Request(base + "/api/state", headers={"X-Studio-Token": token})
        for _ in range(50):
            try:
                with urllib.request.urlopen(request) as answer:
                    state = __import__("json").load(answer)
                break
            except OSError:
                time.sleep(0.1)
        assert state["folder"].endswith("song.acgmake")
        assert (tmp_path / "song.acgmake" / "lyrics.txt").read_text(encoding="utf-8") == LYRICS
    finally:
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=20)
    assert process.returncode == 0, out
    assert "studio stopped" in out and "Traceback" not in out


# -- in a real browser ---------------------------------------------------------------------------


def _chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def _headless_chromium():
    """Debian's chromium, headless, through its chromedriver (a Selenium driver)."""
    webdriver = pytest.importorskip("selenium.webdriver")
    browser, driver_path = _chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(driver_path))


@pytest.mark.skipif(
    _chromium() is None, reason="needs Debian's chromium and chromium-driver (apt-get install)"
)
def test_painting_in_chromium_changes_the_colored_picture_where_painted(studio, tmp_path):
    pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    if studio.file("hints").exists():
        studio.write("hints", None, then=("colored",))
    studio.make("colored")  # run alone, no test before it has coloured the character
    process, address = _start(studio.folder)
    driver = _headless_chromium()
    try:
        before = studio.file("colored").read_bytes()
        driver.get(address)
        wait = WebDriverWait(driver, 60)
        wait.until(lambda d: d.execute_script("return document.getElementById('hints').width") > 0)
        canvas = driver.find_element(By.ID, "hints")
        driver.execute_script("arguments[0].scrollIntoView()", canvas)
        driver.execute_script("document.getElementById('brush-colour').value = '#1030e0'")
        box = canvas.rect
        # A short stroke across the hair (face.json's hair point is at 50%, 24%).
        actions = ActionChains(driver)
        actions.move_to_element_with_offset(canvas, -12, -int(box["height"] * 0.26))
        actions.click_and_hold().move_by_offset(8, 0).move_by_offset(8, 0).move_by_offset(8, 2)
        actions.release().perform()
        wait.until(lambda d: "stroke" in d.find_element(By.ID, "colour-time").text)
        driver.save_screenshot(str(tmp_path / "studio.png"))  # to look at when it fails
        after = studio.file("colored").read_bytes()
        assert after != before
        width, height = _size(studio)
        colored = np.asarray(Image.open(io.BytesIO(after)).convert("RGB")).astype(float)
        x, y = width // 2, int(0.24 * height)
        blue = colored[y - 6 : y + 6, x - 6 : x + 6].mean(axis=(0, 1))
        assert blue[2] - blue[0] > 60, blue
    finally:
        driver.quit()
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=20)


@pytest.mark.slow
@pytest.mark.skipif(
    _chromium() is None, reason="needs Debian's chromium and chromium-driver (apt-get install)"
)
def test_a_clip_rendered_from_the_page_with_an_option_set_there_plays_in_chromium(tmp_path):
    """The whole page, as a new user meets it: a lyrics file, an option changed in the options
    table (12 frames a second), *Render the clip*, and the clip plays in the page."""
    import json

    pytest.importorskip("selenium.webdriver")
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    lyrics = tmp_path / "song.txt"
    lyrics.write_text("かえるのうたが\n", encoding="utf-8")
    process, address = _start(lyrics)
    driver = _headless_chromium()
    folder = tmp_path / "song.acgmake"
    try:
        driver.get(address)
        # The options table is built again whenever an option changes: a cell found before
        # may be gone by the time it is read.
        wait = WebDriverWait(driver, 60, ignored_exceptions=[StaleElementReferenceException])
        wait.until(lambda d: d.find_elements(By.ID, "option-animate-fps"))
        driver.find_element(By.CSS_SELECTOR, "#options-part summary").click()
        fps = driver.find_element(By.ID, "option-animate-fps")
        # One change: select what is there and type over it (clear() would be a change too).
        fps.send_keys(Keys.CONTROL, "a")
        fps.send_keys("12", Keys.TAB)
        wait.until(
            lambda d: (
                "set"
                in d.find_element(By.ID, "option-animate-fps")
                .find_element(By.XPATH, "./ancestor::tr")
                .get_attribute("class")
            )
        )
        driver.find_element(By.ID, "render").click()
        WebDriverWait(driver, 400).until(
            lambda d: d.execute_script("return document.getElementById('clip').readyState") >= 2
        )
        driver.execute_script(
            "const v = document.getElementById('clip'); v.muted = true; v.play();"
        )
        WebDriverWait(driver, 30).until(
            lambda d: d.execute_script("return document.getElementById('clip').currentTime") > 0.3
        )
        duration = driver.execute_script("return document.getElementById('clip').duration")
        driver.save_screenshot(str(tmp_path / "studio.png"))  # to look at when it fails
    finally:
        driver.quit()
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["stages"]["animate"]["params"]["fps"] == 12
    assert (folder / "clip.mp4").is_file() and duration > 5


@pytest.mark.skipif(
    _chromium() is None, reason="needs Debian's chromium and chromium-driver (apt-get install)"
)
def test_a_guessed_reading_is_chosen_by_a_click_that_writes_its_furigana(tmp_path):
    pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    lyrics = tmp_path / "song.txt"
    lyrics.write_text("待てど暮らせど 来ぬ人を\n", encoding="utf-8")
    process, address = _start(lyrics)
    driver = _headless_chromium()
    saved = tmp_path / "song.acgmake" / "lyrics.txt"
    try:
        driver.get(address)
        wait = WebDriverWait(driver, 60)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#readings button.furigana"))
        buttons = driver.find_elements(By.CSS_SELECTOR, "#readings button.furigana")
        assert len(buttons) == 2  # keep the reading sung now, or sing the other
        other = buttons[1].text.split(": ")[1]  # 来(き) or 来(こ)
        buttons[1].click()
        wait.until(lambda d: other in saved.read_text(encoding="utf-8"))
        assert (
            driver.find_element(By.ID, "lyrics")
            .get_attribute("value")
            .startswith(f"待てど暮らせど {other}ぬ人を")
        )
        wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, "#readings .guessed"))
    finally:
        driver.quit()
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
