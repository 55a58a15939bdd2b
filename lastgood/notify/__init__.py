"""Notifications: events → routes (``[[notify.route]]``) → apprise URLs.

Modules, each owning one thing: :mod:`~lastgood.notify.routing` (which events a route takes, the
default set, dedupe keys), :mod:`~lastgood.notify.notifier` (the subscriber, its worker thread,
retries, the delivery log, drain), :mod:`~lastgood.notify.context` and
:mod:`~lastgood.notify.message` (what a message says, Jinja2 in a sandbox),
:mod:`~lastgood.notify.delivery` (one bounded apprise attempt, masked URLs).

The project subscribes a notifier when routes are configured (``project.notifier``); emitting
an event is all most code does. The verbs that must know the outcome (``lastgood notify
test``, ``lastgood notify log``) are in :mod:`lastgood.operations.notify`: this package knows
nothing of the project, and importing it imports nothing else.
"""
