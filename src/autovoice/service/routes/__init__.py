"""One module per resource: health, profiles, conversions, tts."""
