"""The verbs. The CLI and the server call these and only render what they return."""
