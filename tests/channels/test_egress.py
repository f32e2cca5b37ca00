"""The one egress guard: which addresses each policy refuses, and the channel calls behind it
(Telegram's setWebhook when a channel is added, the WhatsApp Graph API at its api_base)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from graph_api import ACCESS_TOKEN, APP_SECRET, PHONE_NUMBER_ID, FakeGraphAPI
from telegram_api import TOKEN, FakeBotAPI

from channels import egress
from channels.base import OutboundMessage
from channels.egress import PUBLIC, Egress, for_channels, for_webhooks
from channels.whatsapp.sender import GraphError, download, send
from inbox.db import Sessions
from inbox.ingest.channels import add_channel

WEBHOOKS = for_webhooks(allow_loopback=True)  # SWITCHBOARD_WEBHOOK_ALLOW_LOOPBACK=true
PRIVATE = for_channels(allow_private_urls=True)  # SWITCHBOARD_ALLOW_PRIVATE_URLS=true


@pytest.mark.parametrize(
    ("address", "refused_by"),
    [
        ("127.0.0.1", {PUBLIC, for_webhooks(False), for_channels(False)}),
        ("::1", {PUBLIC}),
        ("10.1.2.3", {PUBLIC, WEBHOOKS}),
        ("192.168.0.10", {PUBLIC, WEBHOOKS}),
        ("172.16.5.4", {PUBLIC, WEBHOOKS}),
        ("100.64.0.1", {PUBLIC, WEBHOOKS}),
        ("fd00::1", {PUBLIC, WEBHOOKS}),
        ("::ffff:10.0.0.1", {PUBLIC, WEBHOOKS}),
        ("169.254.169.254", {PUBLIC, WEBHOOKS, PRIVATE}),  # the cloud's metadata service
        ("fe80::1%eth0", {PUBLIC, WEBHOOKS, PRIVATE}),
        ("::ffff:169.254.169.254", {PUBLIC, WEBHOOKS, PRIVATE}),
        ("224.0.0.251", {PUBLIC, WEBHOOKS, PRIVATE}),
        ("0.0.0.0", {PUBLIC, WEBHOOKS, PRIVATE}),
        ("240.0.0.1", {PUBLIC, WEBHOOKS, PRIVATE}),
        ("93.184.216.34", set()),
        ("2606:2800:220:1:248:1893:25c8:1946", set()),
    ],
)
def test_each_policy_refuses_what_its_setting_does_not_allow(
    address: str, refused_by: set[Egress]
) -> None:
    for policy in (PUBLIC, WEBHOOKS, PRIVATE):
        reason = policy.refused(address)
        assert (reason is not None) == (policy in refused_by), (policy, reason)


async def test_a_url_naming_a_private_host_is_refused_before_any_connection() -> None:
    assert await PUBLIC.refused_url("http://localhost:8080/x") == (
        "localhost resolves to an address we refuse: 127.0.0.1 is a loopback address"
    )
    assert await PRIVATE.refused_url("http://localhost:8080/x") is None
    assert await PRIVATE.refused_url("http://169.254.169.254/latest/meta-data/") == (
        "169.254.169.254 is a link-local address"
    )


@pytest.fixture
async def bot_api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as api:
        yield api


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraphAPI]:
    async with FakeGraphAPI() as api:
        yield api


async def test_adding_a_telegram_channel_sets_no_webhook_on_a_private_api_base(
    sessions: Sessions, bot_api: FakeBotAPI
) -> None:
    config = {"token": TOKEN, "api_base": bot_api.base_url, "public_url": "https://sb.example"}
    egress.configure(allow_private_urls=False)
    with pytest.raises(ValueError, match="Telegram refused the webhook"):
        async with sessions() as session, session.begin():
            await add_channel(session, "telegram", "Telegram", dict(config))
    assert bot_api.sent("setWebhook") == []
    egress.configure(allow_private_urls=True)  # a bot API beside the service, allowed
    async with sessions() as session, session.begin():
        channel = await add_channel(session, "telegram", "Telegram", dict(config))
    assert channel.config["webhook_url"].startswith("https://sb.example/webhooks/telegram/")
    assert [p["url"] for p in bot_api.sent("setWebhook")] == [channel.config["webhook_url"]]


def cloud_config(graph: FakeGraphAPI) -> dict[str, str]:
    return {
        "phone_number_id": PHONE_NUMBER_ID,
        "access_token": ACCESS_TOKEN,
        "app_secret": APP_SECRET,
        "api_base": graph.base_url,
    }


async def test_a_whatsapp_reply_is_not_sent_to_a_private_api_base(graph: FakeGraphAPI) -> None:
    config = cloud_config(graph)
    reply = OutboundMessage(to="31612345678", text="Goedemiddag")
    egress.configure(allow_private_urls=False)
    refused = await send(config, reply)
    assert refused.status in ("failed", "retry")
    assert refused.error is not None and "127.0.0.1 is a loopback address" in refused.error
    assert graph.calls == []
    egress.configure(allow_private_urls=True)
    assert (await send(config, reply)).status == "sent"
    assert len(graph.sent()) == 1


async def test_a_media_host_whose_name_resolves_inward_is_refused_for_good(
    graph: FakeGraphAPI,
) -> None:
    graph.media["4471"] = (b"\xff\xd8 jpeg", "image/jpeg")
    graph.media_url_override = "https://localhost:9/media/4471"  # off the api_base: public only
    with pytest.raises(GraphError, match="is a loopback address") as refused:
        await download(cloud_config(graph), "4471")  # even though private URLs are allowed
    assert refused.value.temporary is False
