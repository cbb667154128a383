"""CEL rules on metadata.name: a custom resource's name must be one its children can take.

The API server accepts any DNS subdomain (253 characters, dots) as a custom resource's
name, but the children are named after it: a Service needs a DNS-1035 label (63, no dots,
a letter first), label values stop at 63, and the Job controller names each worker's host
<job>-<index>. Refused at apply time, with the limit in the message, such a name never
reaches the operator.
"""

from __future__ import annotations

from typing import Any

from kubeforge.api.base import cel

DNS_1035_LABEL = "^[a-z]([-a-z0-9]*[a-z0-9])?$"
DNS_LABEL_MAX = 63


def name_rules(limit: int, longest_child: str) -> tuple[dict[str, Any], ...]:
    """Two rules on the root: the DNS-1035 shape, and at most `limit` characters so `longest_child` fits in 63."""
    return (
        cel(
            f"self.metadata.name.matches('{DNS_1035_LABEL}')",
            "metadata.name must be a DNS-1035 label: lowercase letters, digits and '-', starting with a letter, "
            "no dots (it names a Service)",
        ),
        cel(
            f"size(self.metadata.name) <= {limit}",
            f"metadata.name must be at most {limit} characters: the longest child name, {longest_child}, "
            f"must fit in {DNS_LABEL_MAX}",
        ),
    )
