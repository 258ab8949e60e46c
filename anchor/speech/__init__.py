"""Speech: Script → normalized audio and subtitle cues, through a chain of TTS engines."""
