"""``acgmake plugin new NAME``: a working plugin package to start from.

It writes ``acgmake-NAME/`` with a ``pyproject.toml`` that declares the entry point, one stage
(a square cover picture of the colored character, with an option), a test that runs the stage
with :func:`acgmake.testing.run_stage`, and a README. ``pip install -e acgmake-NAME`` puts the
stage into ``acgmake song``; ``pytest acgmake-NAME`` runs its test. docs/plugins.md walks
through it.
"""

from __future__ import annotations

import re
from pathlib import Path

from acgmake import __version__
from acgmake.errors import UserError

#: A plugin name: a lowercase word, digits and single hyphens or underscores between.
NAME = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")


def plugin_files(name: str) -> dict[str, str]:
    """The files of the plugin package ``acgmake-NAME``, by path relative to its folder."""
    if not NAME.fullmatch(name) or len(name) > 40:
        raise UserError(
            f"{name!r} is not a plugin name; use a short lowercase word (letters, digits, "
            "hyphens), e.g. `acgmake plugin new cover`"
        )
    word = name.replace("-", "_")
    package = f"acgmake_{word}"
    distribution = f"acgmake-{name.replace('_', '-')}"
    values = {
        "name": name,
        "word": word,
        "package": package,
        "distribution": distribution,
        "version": __version__,
    }
    return {path: text.format(**values) for path, text in _FILES.items()} | {
        f"src/{package}/__init__.py": _MODULE.format(**values),
        f"tests/test_{word}.py": _TEST.format(**values),
    }


def write_plugin(name: str, parent: Path) -> Path:
    """Write the package for plugin ``name`` into ``parent``; returns its folder. UserError
    when the folder is already there (nothing of yours is overwritten)."""
    files = plugin_files(name)
    folder = Path(parent) / f"acgmake-{name.replace('_', '-')}"
    if folder.exists():
        raise UserError(f"{folder} already exists; choose another name or folder (--dir)")
    try:
        for relative, text in files.items():
            path = folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    except OSError as error:
        reason = error.strerror or error
        raise UserError(f"cannot write the plugin into {folder}: {reason}") from None
    return folder


_FILES = {
    "pyproject.toml": """[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "{distribution}"
version = "0.1.0"
description = "An acgmake plugin: a square cover picture of the colored character."
readme = "README.md"
requires-python = ">=3.10"
license = "MIT"
dependencies = ["acgmake>={version}", "pillow>=10"]

[project.optional-dependencies]
test = ["pytest>=7"]

# acgmake finds the plugin through this entry point: `acgmake plugins` lists it.
[project.entry-points.acgmake]
{name} = "{package}"

[tool.setuptools.packages.find]
where = ["src"]
""",
    "README.md": """# {distribution}

An [acgmake](https://pypi.org/project/acgmake/) plugin. It adds the stage `{word}`: a square
cover picture of the colored character (`{word}.png`, 512 px by default), made in every
`acgmake song` run once the plugin is installed.

```bash
pip install -e .            # or: pip install {distribution}
acgmake stages              # {word} is in the chain
acgmake song lyrics.txt     # writes lyrics.acgmake/{word}.png too
acgmake {word} lyrics.acgmake/colored.png --{name}-size 256 -o cover.png
pip install -e '.[test]' && pytest
```
""",
}

_MODULE = '''"""{distribution}: a square cover picture of the colored character.

A plugin registers artifact kinds (the files it makes) and stages (what makes them) with the
hooks of acgmake. Heavy libraries are imported inside the stage's function, so that
``acgmake --help`` stays fast. See acgmake's docs/plugins.md.
"""

from __future__ import annotations

from acgmake import Artifact, Param, Stage, StageContext, UserError, hookimpl

__version__ = "0.1.0"


@hookimpl
def register_artifacts(register):
    register(Artifact("{word}", "{word}.png", "a square cover picture of the character"))


def make_cover(ctx: StageContext) -> None:
    """The colored character centred on a square of the background colour the user chose."""
    from PIL import Image, ImageColor

    size = ctx.params["{word}_size"]
    try:
        background = ImageColor.getrgb(ctx.params["{word}_background"])
    except ValueError:
        raise UserError(
            f"--{name}-background {{ctx.params['{word}_background']!r}} is not a colour; give "
            "e.g. #ffe0f0"
        ) from None
    with Image.open(ctx.input("colored")) as picture:
        character = picture.convert("RGBA")
    character.thumbnail((size, size), Image.Resampling.LANCZOS)
    cover = Image.new("RGBA", (size, size), (*background, 255))
    cover.alpha_composite(
        character, ((size - character.width) // 2, (size - character.height) // 2)
    )
    # Write to ctx.output(...): acgmake renames it into place only when the stage succeeds.
    cover.convert("RGB").save(ctx.output("{word}"), format="PNG")
    ctx.log(f"cover {{size}}x{{size}} px")


@hookimpl
def register_stages(register):
    register(
        Stage(
            "{word}",
            needs=("colored",),
            makes=("{word}",),
            run=make_cover,
            # Bump it whenever the same inputs would now give a different picture.
            version="1",
            # About how many seconds of one core it takes: stages heading the longest chain
            # of work start first when more are ready than may run at once.
            cost_s=0.2,
            # Options named after the stage: `acgmake song` offers every stage's options, and
            # two stages sharing a name would both become --<stage>-<name> there.
            params=(
                Param("{word}_size", 512, "Side of the square cover in pixels."),
                Param("{word}_background", "#ffe8f2", "Colour behind the character."),
            ),
            help="A square cover picture of the colored character. "
            "Example: acgmake {word} colored.png --{name}-size 256",
        )
    )
'''

_TEST = '''"""The {word} stage, run as acgmake runs it, on a small picture drawn here."""

from __future__ import annotations

import pytest
from PIL import Image

from acgmake import UserError
from acgmake.testing import run_stage


@pytest.fixture
def colored(tmp_path):
    """A stand-in for colored.png: a red disc on transparency, taller than wide."""
    picture = Image.new("RGBA", (60, 100), (0, 0, 0, 0))
    picture.paste((220, 40, 40, 255), (10, 20, 50, 80))
    path = tmp_path / "colored.png"
    picture.save(path)
    return path


def test_the_cover_is_square_with_the_character_in_the_middle(colored, tmp_path):
    made = run_stage(
        "{word}",
        {{"colored": colored}},
        {{"{word}_size": 200, "{word}_background": "#ffffff"}},
        plugins=["{package}"],
        workdir=tmp_path / "run",
    )
    with Image.open(made["{word}"]) as cover:
        assert cover.size == (200, 200)
        assert cover.getpixel((100, 100)) == (220, 40, 40)  # the character, centred
        assert cover.getpixel((5, 5)) == (255, 255, 255)  # the background


def test_a_bad_colour_is_one_clear_error(colored, tmp_path):
    with pytest.raises(UserError, match="not a colour"):
        run_stage(
            "{word}",
            {{"colored": colored}},
            {{"{word}_background": "sky"}},
            plugins=["{package}"],
            workdir=tmp_path / "run",
        )
'''
