"""Melody, rhythm, harmony and the MusicXML and MIDI files they are written to."""

#: A song's MusicXML is well under 1 MB; a file over this is refused before parsing.
MAX_SCORE_BYTES = 5 * 1024 * 1024
#: Tempos a score may set, in quarter notes per minute: from a slow grave (a half note at 10)
#: to a fast cut-time presto (a half note at 200). Far outside is a typo or a crafted file
#: (Sinsy takes gigabytes for a score at 0.001 bpm).
MIN_TEMPO_BPM = 20.0
MAX_TEMPO_BPM = 400.0
#: Notes and rests in the sung part (about 20 minutes of eighth notes at 120 bpm).
MAX_SCORE_NOTES = 5000
#: The longest score acgmake sings (Sinsy's memory and time grow with the song's length).
MAX_SONG_S = 20 * 60.0
#: Quarter notes in the longest bar a score may have (a 32/4 or 64/8 bar).
MAX_BAR_QUARTERS = 32
#: MIDI notes a score may give the voice: C1 to C7, wider than any singer's range.
SUNG_MIDI_RANGE = (24, 96)
