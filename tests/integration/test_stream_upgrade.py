"""A WebSocket upgrade must name the paytrackr.v1 subprotocol: without it
(or with another) the server refuses the upgrade instead of speaking
WebSocket on the plain HTTP protocol."""
import asyncio

import pytest
import websockets
import websockets.exceptions

import harness
from stream_helpers import ws_url


@pytest.mark.parametrize("subprotocols", [None, ["http"], ["chat"]])
def test_upgrade_without_our_subprotocol_is_refused(server, subprotocols):
    async def attempt():
        async with websockets.connect(
                ws_url(server), subprotocols=subprotocols, open_timeout=10,
                extra_headers={"Authorization": "Bearer " + harness.OPERATOR_TOKEN}) as ws:
            await ws.send('{"type":"subscribe","after":null}')
            return await asyncio.wait_for(ws.recv(), 5)

    # Refused at the handshake: no WebSocket is ever opened on "http".
    with pytest.raises(websockets.exceptions.InvalidHandshake):
        asyncio.run(attempt())


def test_upgrade_with_our_subprotocol_works(server):
    async def attempt():
        async with websockets.connect(
                ws_url(server), subprotocols=["paytrackr.v1"], open_timeout=10,
                extra_headers={"Authorization": "Bearer " + harness.OPERATOR_TOKEN}) as ws:
            await ws.send('{"type":"subscribe","after":null}')
            return await asyncio.wait_for(ws.recv(), 5)

    assert '"subscribed"' in asyncio.run(attempt())
