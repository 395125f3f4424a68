"""Runs scim2-tester (PyPI, pinned in .ci/run) against a running Enroll.

Usage: check.py BASE_URL TOKEN   (BASE_URL ends in /scim/v2)

Prints one line per check and exits 1 when any check fails (ERROR or CRITICAL).
Checks for what Enroll does not offer (bulk, sorting, /.search across resource types)
come back SKIPPED because ServiceProviderConfig or a 501 says so.

One thing is configured: the data scim2-tester makes up. It fills `userName` with a
random UUID, but Enroll's userName is the email address the invitation goes to (the
invite form's rules), so the runner gives the field a fresh example address per draw.
Every check and every request stays scim2-tester's own.
"""

import sys
import uuid

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server


class FreshAddresses:
    """A one-element sequence whose element is a new address at every read, so that
    `random.choice` on the field's examples yields a unique, valid userName."""

    def __len__(self):
        return 1

    def __getitem__(self, index):
        if index != 0:
            raise IndexError(index)
        return f"scim-check-{uuid.uuid4().hex[:16]}@example.com"


def main() -> int:
    base_url, token = sys.argv[1], sys.argv[2]
    http = httpx2.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    client = SyncSCIMClient(http)
    client.discover()
    # The checks fill the model of each resource type (User with its extensions).
    for resource_type in client.provider.resource_types:
        model = client.provider.model_for(resource_type)
        field = getattr(model, "model_fields", {}).get("user_name")
        if field is not None:
            field.examples = FreshAddresses()

    results = check_server(client)
    failed = 0
    for result in results:
        where = f"[{result.resource_type}] " if result.resource_type else ""
        print(f"{result.status.name:10} {where}{result.title}: {result.reason or ''}".rstrip())
        if result.status in (Status.ERROR, Status.CRITICAL):
            failed += 1
    counts = {}
    for result in results:
        counts[result.status.name] = counts.get(result.status.name, 0) + 1
    print("scim2-tester:", ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
