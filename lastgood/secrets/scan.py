"""What looks like a live credential left where no ``[secrets]`` rule masks it.

``snapshot`` (and ``deploy`` and ``request``, which snapshot the folder) warns about such a
thing: it would be shown in every diff, alert and page. A warning, never a refusal: a false
alarm must not stop a change, and the cure (marking the key) is the team's call.

The file is masked first, exactly as a view would show it; whatever still looks like a
credential in the masked text is reported. So the warning fires when, and only when, a view
would show the credential. Two kinds of evidence:

- **Known shapes** of tokens that services hand out: the prefix is the vendor's, chosen so
  leaked tokens can be found (GitHub ``ghp_``, Slack ``xoxb-``, AWS ``AKIA``, Stripe
  ``sk_live_``, OpenAI and Anthropic ``sk-``…), private keys (``-----BEGIN … PRIVATE KEY``)
  and JSON Web Tokens. Each requires the token's length too, so prose that mentions a
  prefix is not flagged. (A password in a URL is always masked, so never reported.)
- **High entropy**: a run of 24 or more base64 or URL-safe characters with upper case, lower
  case and digits whose Shannon entropy is at least 4.2 bits per character. Hex strings (at
  most 4 bits: content hashes, ids, colours), UUIDs and words stay below it.

A suspect names its file, line and kind, never the value. Nothing here reads or writes.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from lastgood.record import Record
from lastgood.secrets.mask import Masker
from lastgood.secrets.policy import SecretPolicy
from lastgood.secrets.values import LINE

KNOWN = (
    ("a private key", r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"),
    ("a GitHub token (ghp_…)", r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,}"),
    ("a GitHub token (github_pat_…)", r"\bgithub_pat_[A-Za-z0-9_]{40,}"),
    ("a GitLab token (glpat-…)", r"\bglpat-[A-Za-z0-9_\-]{20,}"),
    ("a Slack token (xox…-)", r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"),
    ("a Slack webhook URL", r"https://hooks\.slack\.com/services/[A-Za-z0-9/]{20,}"),
    ("an AWS access key id (AKIA…)", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    ("a Google API key (AIza…)", r"\bAIza[0-9A-Za-z_\-]{35}"),
    ("a Stripe key (sk_live_…)", r"\b(?:sk|rk)_live_[0-9A-Za-z]{20,}"),
    ("an OpenAI or Anthropic key (sk-…)", r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}"),
    ("a Hugging Face token (hf_…)", r"\bhf_[A-Za-z0-9]{30,}"),
    ("a SendGrid key (SG.…)", r"\bSG\.[A-Za-z0-9_\-]{20,}\.[A-Za-z0-9_\-]{20,}"),
    ("an npm token (npm_…)", r"\bnpm_[A-Za-z0-9]{36}"),
    (
        "a JSON Web Token (eyJ…)",
        r"\beyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]+",
    ),
)
_KNOWN = [(kind, re.compile(pattern)) for kind, pattern in KNOWN]
_RUN = re.compile(r"[A-Za-z0-9+/=_\-]{24,}")
MIN_ENTROPY = 4.2


class Suspect(Record):
    """Something on ``line`` of ``path`` that looks like a credential of ``kind``."""

    path: str
    line: int
    kind: str
    key: str | None = None
    """The key it is the value of, when the line has a ``key: value`` shape."""

    def to_json(self) -> dict[str, object]:
        return {"path": self.path, "line": self.line, "kind": self.kind, "key": self.key}


def scan(path: str, data: bytes, policy: SecretPolicy | None) -> list[Suspect]:
    """The suspects in one file, at most one per line (the first kind found)."""
    shown = Masker(policy).content(path, data)
    try:
        text = shown.decode("utf-8")
    except UnicodeDecodeError:
        return []
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        kind = suspected_kind(line)
        if kind is not None:
            pair = LINE.match(line)
            key = pair["key"].strip("\"'") if pair else None
            found.append(Suspect(path, number, kind, key))
    return found


def suspected_kind(line: str) -> str | None:
    """What the credential on ``line`` looks like, or None."""
    for kind, pattern in _KNOWN:
        if pattern.search(line):
            return kind
    for run in _RUN.finditer(line):
        if high_entropy(run.group()):
            return f"a high-entropy string of {len(run.group())} characters"
    return None


def high_entropy(token: str) -> bool:
    """Upper case, lower case and digits, and at least :data:`MIN_ENTROPY` bits a character."""
    if not (re.search(r"[a-z]", token) and re.search(r"[A-Z]", token)):
        return False
    if not re.search(r"\d", token):
        return False
    counts = Counter(token)
    entropy = -sum(n / len(token) * math.log2(n / len(token)) for n in counts.values())
    return entropy >= MIN_ENTROPY


def warning(suspect: Suspect) -> str:
    """The warning for ``suspect``, with how to mark it; the value is never in it."""
    where = f"{suspect.path} line {suspect.line}"
    mark = (
        f'[secrets] keys = ["{suspect.key}"]'
        if suspect.key
        else f'[secrets] paths = ["{suspect.path}"]'
    )
    return (
        f"warning: {where} holds what looks like {suspect.kind}, outside any key marked "
        "secret: diffs, alerts and pages would show it\n"
        f"  hint: if it is a secret, mark it in lastgood.toml with {mark} (or a values "
        "selector); better still, keep credentials out of versioned files"
    )
