"""``pixelrl-train``: the chapter's experiments from one command (see ``pixelrl-train --help``)."""
