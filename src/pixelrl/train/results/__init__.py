"""Reading what runs wrote: progress logs, learning phases, plots, comparison tables, summaries, frames."""
