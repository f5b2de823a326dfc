"""Training the embedded default model: recipe, data, loop. Needs the ``export`` extra (torch)."""
