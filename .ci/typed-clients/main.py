"""Type-checked (never run) by .ci/typed-clients/check with mypy against a
client that openapi-python-client generates from docs/openapi.json: what a
connector developer writes first must type-check."""

from hookhub_api_client import AuthenticatedClient
from hookhub_api_client.api.events import create_event
from hookhub_api_client.api.subscriptions import create_subscription, list_subscriptions
from hookhub_api_client.models import (
    AcceptedBody,
    IngestBody,
    IngestBodyData,
    ListBodySubscriptionBody,
    SubscriptionBody,
    SubscriptionCreate,
)


def post_an_event_and_list_subscriptions(base_url: str, key: str) -> list[str]:
    hub = AuthenticatedClient(base_url=base_url, token=key)
    data = IngestBodyData.from_dict({"appointment_id": "apt_1", "client_id": "cl_1"})
    accepted = create_event.sync(client=hub, body=IngestBody(type_="appointment.booked", data=data))
    ids = [accepted.id] if isinstance(accepted, AcceptedBody) else []

    # A create needs `url` and `event_types`: both are required arguments.
    create_subscription.sync(
        client=hub, body=SubscriptionCreate(url="https://crm.example.com/hooks", event_types=["appointment.booked"])
    )

    page = list_subscriptions.sync(client=hub, limit=10)
    if isinstance(page, ListBodySubscriptionBody):
        for item in page.data:
            # List items are the one subscription type, not a copy of it.
            subscription: SubscriptionBody = item
            ids.append(subscription.url)
    return ids
