"""A browser tab without a browser: loads a real NiceGUI page over HTTP, then joins it over socket.io.

It speaks what the page's JavaScript speaks (see shared/MEASURED.md): the client id from the page's `query`,
the element tree from `parseElements`, a new socket.io connection with the implicit handshake, and `event`
messages for clicks and input. The recorder element adds the `/vr` audio namespace on the same connection,
authenticated by the upload token in its props. Nothing here reaches inside the server.
"""

import ast
import asyncio
import html
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import socketio
from yarl import URL

SOCKET_PATH = '/_nicegui_ws/socket.io'
AUDIO_NAMESPACE = '/vr'
_QUERY = re.compile(r'query: (\{.*?\}),\n')
_ELEMENTS = re.compile(r'parseElements\(String\.raw`(.*?)`\)', re.S)


class PageError(RuntimeError):
    pass


@dataclass(frozen=True)
class LoadedPage:
    url: str
    client_id: str
    elements: dict[int, dict[str, Any]]
    # What the page's answer set (a load balancer's sticky cookie among them): the browser sends them with the
    # websocket, which is how the websocket reaches the instance that rendered the page.
    cookies: dict[str, str] = field(default_factory=dict)

    def element_id(self, **props: Any) -> int:
        """The first element whose props include all of `props`."""
        for element_id, element in self.elements.items():
            have = element.get('props', {})
            if all(have.get(key) == value for key, value in props.items()):
                return element_id
        raise PageError(f'{self.url} has no element with {props}')

    def element_with_prop(self, name: str) -> int:
        for element_id, element in self.elements.items():
            if name in element.get('props', {}):
                return element_id
        raise PageError(f'{self.url} has no element with a {name!r} prop')

    def listener(self, element_id: int, event_type: str) -> str:
        for listener in self.elements[element_id].get('events', []):
            if listener['type'] == event_type:
                return str(listener['listener_id'])
        raise PageError(f'element {element_id} does not listen to {event_type!r}')


async def load_page(http: aiohttp.ClientSession, url: str) -> LoadedPage:
    async with http.get(url, allow_redirects=False) as response:
        text = await response.text()
        cookies = {name: morsel.value for name, morsel in response.cookies.items()}
        if response.status != 200:
            raise PageError(f'GET {url} answered {response.status} {response.headers.get("location", "")}')
    query, tree = _QUERY.search(text), _ELEMENTS.search(text)
    if not query or not tree:
        raise PageError(f'{url} is not a NiceGUI page')
    elements = json.loads(html.unescape(tree.group(1)))
    client_id = ast.literal_eval(query.group(1))['client_id']
    return LoadedPage(url, client_id, {int(k): v for k, v in elements.items()}, cookies)


async def connect(
    base_url: str,
    page: LoadedPage,
    http: aiohttp.ClientSession | None = None,
    handlers: dict[str, Callable[[Any], None]] | None = None,
    upload_token: str | None = None,
) -> socketio.AsyncClient:
    """A new websocket joined to `page` by NiceGUI's implicit handshake, as the page's own script connects;
    with `upload_token`, the recorder's `/vr` audio namespace rides on the same websocket.

    The page's cookies go in the upgrade request's own headers: engine.io would put a `Cookie` passed to `connect`
    into the shared session's jar, where recorders on one session would overwrite each other's sticky cookie."""
    cookie = '; '.join(f'{name}={value}' for name, value in page.cookies.items())
    extra = {'headers': {'Cookie': cookie}} if cookie else {}
    client = socketio.AsyncClient(reconnection=False, http_session=http, websocket_extra_options=extra)
    for event, handler in (handlers or {}).items():
        client.on(event, handler)
    query = (
        f'client_id={page.client_id}&next_message_id=0&implicit_handshake=true'
        f'&document_id={uuid.uuid4()}&tab_id={uuid.uuid4()}'
    )
    await client.connect(
        f'{base_url}?{query}',
        namespaces=['/', AUDIO_NAMESPACE] if upload_token else ['/'],
        auth={'token': upload_token} if upload_token else None,
        transports=['websocket'],
        socketio_path=SOCKET_PATH,
        wait_timeout=30,
    )
    return client


async def emit_event(
    client: socketio.AsyncClient, page: LoadedPage, element_id: int, event_type: str, *args: Any
) -> None:
    """A DOM event on an element, as NiceGUI's page script sends it: each argument JSON-encoded."""
    message = {
        'id': element_id,
        'client_id': page.client_id,
        'listener_id': page.listener(element_id, event_type),
        'args': [json.dumps(arg) for arg in args],
    }
    await client.emit('event', message)


async def onboard(base_url: str, name: str) -> str:
    """Sign a new browser in through the real /onboard page; returns its session cookie, the browser's identity."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        page = await load_page(http, f'{base_url}/onboard')
        signed_in: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_update(data: dict[str, Any]) -> None:
            if 'recovery-key' in json.dumps(data) and not signed_in.done():  # shown once the browser is signed in
                signed_in.set_result(None)

        client = await connect(base_url, page, http, {'update': on_update})
        try:
            name_input = page.element_id(**{'data-testid': 'name-input'})
            await emit_event(client, page, name_input, 'update:value', name)
            await emit_event(client, page, page.element_id(**{'data-testid': 'onboard-submit'}), 'click')
            await asyncio.wait_for(signed_in, timeout=30)
        finally:
            await client.disconnect()
        cookie = http.cookie_jar.filter_cookies(URL(base_url)).get('session')
        if cookie is None:
            raise PageError('the onboarding page set no session cookie')
        return cookie.value
