"""The bottom layer: what every other layer may use, importing nothing of Hearth's."""
