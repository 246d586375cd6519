"""Subtitles of the lyrics for video editors: karaoke ``.ass`` and plain ``.srt``.

Both show each lyric line from a moment before it is sung (at most :data:`LEAD_S`, never
before the previous line has ended) until a moment after (:data:`TAIL_S`, never into the
next line's time). The ASS file (Advanced SubStation Alpha, what Aegisub, mpv, VLC and
ffmpeg's ``ass`` filter read) times every mora with a karaoke tag ``{\\kNN}`` (NN in
centiseconds): a mora lights up in the highlight colour when it is sung, as in the clip.
Times are rounded to centiseconds *as absolute times* and each tag is the difference of two
rounded times, so the tags of a long line never drift from the song.
"""

from __future__ import annotations

from dataclasses import dataclass

from acgmake.text.shown import span_groups
from acgmake.voice.labels import Line, Mora, Timing

#: The longest a line shows before it is sung, in seconds.
LEAD_S = 1.0
#: The longest a line stays after it is sung, in seconds.
TAIL_S = 0.5


@dataclass(frozen=True)
class Cue:
    """One lyric line on screen: from ``start_s`` to ``end_s`` (seconds), its line."""

    start_s: float
    end_s: float
    line: Line


def cues(timing: Timing) -> list[Cue]:
    """When each lyric line shows (see the module's description of the rules)."""
    lines = timing.lines
    result = []
    for index, line in enumerate(lines):
        previous_end = lines[index - 1].end_s if index else 0.0
        start = max(line.start_s - LEAD_S, previous_end, 0.0)
        end = line.end_s + TAIL_S
        if index + 1 < len(lines):
            following = lines[index + 1]
            end = min(end, max(following.start_s - LEAD_S, line.end_s))
        result.append(Cue(start, max(end, line.end_s), line))
    return result


def _centiseconds(seconds: float) -> int:
    return max(0, round(seconds * 100))


def ass_time(centiseconds: int) -> str:
    """``H:MM:SS.cc``, as ASS writes times."""
    hours, rest = divmod(centiseconds, 360_000)
    minutes, rest = divmod(rest, 6000)
    seconds, hundredths = divmod(rest, 100)
    return f"{hours}:{minutes:02d}:{seconds:02d}.{hundredths:02d}"


def srt_time(seconds: float) -> str:
    """``HH:MM:SS,mmm``, as SubRip writes times."""
    milliseconds = max(0, round(seconds * 1000))
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    whole, milliseconds = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{whole:02d},{milliseconds:03d}"


def karaoke_text(cue: Cue) -> str:
    """The line with a ``{\\kNN}`` tag before each mora (and an empty one for each wait). A
    line shown as written (``Line.chars``) has a tag per group of morae sung from the same
    characters: 星 lights up over ほ and し, the punctuation after a word with it."""
    parts = []
    at = _centiseconds(cue.start_s)
    for text, morae in _syllables(cue.line):
        start, end = _centiseconds(morae[0].start_s), _centiseconds(morae[-1].end_s)
        if start > at:
            parts.append(f"{{\\k{start - at}}}")  # waiting: nothing lights up
        parts.append(f"{{\\k{max(end - max(start, at), 0)}}}{_escape(text)}")
        at = max(end, at)
    return "".join(parts)


def _syllables(line: Line) -> list[tuple[str, list[Mora]]]:
    """The karaoke syllables of ``line``: (text, morae sung over it) in order."""
    if not line.chars or len(line.chars) != len(line.morae):
        return [(mora.text, [mora]) for mora in line.morae]
    groups = [(span, line.morae[first:end]) for span, first, end in span_groups(line.chars)]
    # Each group's text runs from its characters to the next group's: spaces and
    # punctuation go with the word before them, what comes before the first with the first.
    bounds = [0]
    for index in range(1, len(groups)):
        previous, span = groups[index - 1][0], groups[index][0]
        bounds.append(min(max(span[0], previous[1], bounds[-1]), len(line.text)))
    bounds.append(len(line.text))
    return [
        (line.text[bounds[index] : bounds[index + 1]], morae)
        for index, (_, morae) in enumerate(groups)
    ]


def _escape(text: str) -> str:
    # Braces open override tags and a backslash starts one: keep them as plain letters.
    return text.replace("\\", "＼").replace("{", "｛").replace("}", "｝")


def _ass_colour(rgb: tuple[int, int, int], alpha: int = 0) -> str:
    red, green, blue = rgb
    return f"&H{alpha:02X}{blue:02X}{green:02X}{red:02X}"


def ass_text(
    timing: Timing,
    *,
    width: int = 1920,
    height: int = 1080,
    font: str = "IPAexGothic",
    sung: tuple[int, int, int] = (255, 214, 90),
    unsung: tuple[int, int, int] = (255, 255, 255),
    outline: tuple[int, int, int] = (40, 30, 60),
) -> str:
    """The lyrics as an ASS karaoke script for a ``width`` x ``height`` video: one event per
    line, bottom centre, each mora turning from ``unsung`` to ``sung`` as it is sung."""
    size = round(min(width, height) * 0.065)
    title = timing.title.replace("\n", " ") or "acgmake lyrics"
    header = [
        "[Script Info]",
        "; Written by acgmake: the lyrics, each mora timed as sung",
        f"Title: {title}",
        "ScriptType: v4.00+",
        f"PlayResX: {width}",
        f"PlayResY: {height}",
        "WrapStyle: 2",
        "ScaledBorderAndShadow: yes",
        "YCbCr Matrix: TV.709",
        "",
        "[V4+ Styles]",
        "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, "
        "BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, "
        "BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding",
        # Karaoke: SecondaryColour before a mora is sung, PrimaryColour from then on.
        f"Style: Karaoke,{font},{size},{_ass_colour(sung)},{_ass_colour(unsung)},"
        f"{_ass_colour(outline)},{_ass_colour((0, 0, 0), 0x80)},0,0,0,0,100,100,0,0,1,"
        f"{max(1, round(size * 0.08))},0,2,{round(width * 0.04)},{round(width * 0.04)},"
        f"{round(height * 0.04)},1",
        "",
        "[Events]",
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text",
    ]
    events = [
        f"Dialogue: 0,{ass_time(_centiseconds(cue.start_s))},"
        f"{ass_time(_centiseconds(cue.end_s))},Karaoke,,0,0,0,,{karaoke_text(cue)}"
        for cue in cues(timing)
    ]
    return "\n".join(header + events) + "\n"


def srt_text(timing: Timing) -> str:
    """The lyrics as SubRip subtitles: one numbered cue per line."""
    blocks = [
        f"{number}\n{srt_time(cue.start_s)} --> {srt_time(cue.end_s)}\n{cue.line.text}\n"
        for number, cue in enumerate(cues(timing), start=1)
    ]
    return "\n".join(blocks)
