"""``lastgood demo``: the lead-scoring incident, replayed end to end in a temporary folder.

:mod:`lastgood.demo.scorer` is the tiny service whose rules lastgood manages;
:mod:`lastgood.demo.runner` plays the story with the same verbs the CLI uses.
"""
