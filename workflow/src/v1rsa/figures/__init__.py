"""Figures of every stage, drawn the way the course or the papers show them.

One module per family (``data``, ``decoders``, ``normative``, ``encoding``, ``representations``,
``rdms``, ``rsa``) and one shared style (``style``). Plotting functions draw into the
``matplotlib`` Axes they are given, so figures compose; a thin ``*_figure`` function per figure
builds the :class:`matplotlib.figure.Figure` and calls them. Everything takes arrays, xarray
objects or DataFrames (never paths) and uses the non-interactive Agg backend.
"""
