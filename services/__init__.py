"""Domain services of Voice Recorder: no NiceGUI page code lives here."""
