"""Melody, rhythm, harmony and the MusicXML and MIDI files they are written to."""

#: A song's MusicXML is well under 1 MB; a file over this is refused before parsing.
MAX_SCORE_BYTES = 5 * 1024 * 1024
