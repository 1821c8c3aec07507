"""Headless Firefox ESR driven over its built-in WebDriver BiDi: no geckodriver, no Playwright, no Selenium.

Playwright's Firefox is a patched build it downloads, and Selenium needs geckodriver; Debian's `firefox-esr`
speaks the W3C WebDriver BiDi protocol itself once started with `--remote-debugging-port`. This module starts it
on a throwaway profile whose fake microphone (a ~1 kHz tone) is allowed without a prompt, opens a BiDi session on
its websocket and offers the few commands the tests use: navigate, evaluate and call JavaScript, wait for a
condition. The websocket client is aiohttp's, which NiceGUI already depends on.
"""

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.audio_samples import require

PREFERENCES = {
    'media.navigator.streams.fake': True,  # getUserMedia hears a generated ~1 kHz tone
    'media.navigator.permission.disabled': True,  # without it getUserMedia waits forever on an invisible prompt
    'browser.shell.checkDefaultBrowser': False,
    'datareporting.policy.dataSubmissionEnabled': False,
    'toolkit.telemetry.reportingpolicy.firstRun': False,
}
LISTENING = re.compile(r'WebDriver BiDi listening on (ws://\S+)')
START_TIMEOUT_S = 30.0
COMMAND_TIMEOUT_S = 60.0


class BiDiError(RuntimeError):
    """Firefox answered a command with an error, or the page's JavaScript threw."""


def from_remote(value: dict[str, Any]) -> Any:
    """A BiDi RemoteValue as Python: numbers (NaN and ±Infinity too), strings, booleans, arrays, plain objects."""
    kind, raw = value['type'], value.get('value')
    if kind == 'number':
        return {'NaN': float('nan'), 'Infinity': float('inf'), '-Infinity': float('-inf'), '-0': -0.0}.get(raw, raw)
    if kind in ('string', 'boolean'):
        return raw
    if kind in ('undefined', 'null'):
        return None
    if kind == 'array':
        return [from_remote(item) for item in raw or []]
    if kind == 'object':
        return {key: from_remote(item) for key, item in raw or []}
    return {'type': kind}  # nodes, windows, functions: the tests never read them


def to_local(value: Any) -> dict[str, Any]:
    """A Python argument as a BiDi LocalValue (only what the tests pass: scalars)."""
    if value is None:
        return {'type': 'null'}
    if isinstance(value, bool):
        return {'type': 'boolean', 'value': value}
    if isinstance(value, int | float):
        return {'type': 'number', 'value': value}
    return {'type': 'string', 'value': str(value)}


class Firefox:
    """One BiDi session on one tab (the browser's first top-level browsing context)."""

    def __init__(self, websocket: aiohttp.ClientWebSocketResponse) -> None:
        self.websocket = websocket
        self.context = ''
        self._next_id = 0
        self._answers: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read())

    async def command(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self._next_id += 1
        answer = self._answers[self._next_id] = asyncio.get_running_loop().create_future()
        await self.websocket.send_str(json.dumps({'id': self._next_id, 'method': method, 'params': params or {}}))
        message = await asyncio.wait_for(answer, COMMAND_TIMEOUT_S)
        if message.get('type') == 'error':
            raise BiDiError(f'{method}: {message.get("error")}: {message.get("message")}')
        return dict(message['result'])

    async def open(self) -> None:
        await self.command('session.new', {'capabilities': {}})
        tree = await self.command('browsingContext.getTree', {'maxDepth': 0})
        self.context = tree['contexts'][0]['context']

    async def navigate(self, url: str) -> None:
        """Load `url` in the tab and wait until the page has loaded."""
        await self.command('browsingContext.navigate', {'context': self.context, 'url': url, 'wait': 'complete'})

    async def evaluate(self, expression: str) -> Any:
        """An expression's value in the page; a promise is awaited."""
        params = {'expression': expression, 'target': {'context': self.context}, 'awaitPromise': True}
        return self._value(await self.command('script.evaluate', params))

    async def call(self, function: str, *args: Any) -> Any:
        """`function` (JavaScript source, e.g. `(a, b) => a + b`) called with `args`; a promise is awaited."""
        params = {
            'functionDeclaration': function,
            'arguments': [to_local(arg) for arg in args],
            'target': {'context': self.context},
            'awaitPromise': True,
        }
        return self._value(await self.command('script.callFunction', params))

    async def wait_for(self, expression: str, timeout_s: float = 30.0, poll_s: float = 0.1) -> Any:
        """Until `expression` is truthy in the page (errors while the page loads count as not yet); returns it."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            with suppress(BiDiError):
                if value := await self.evaluate(expression):
                    return value
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f'never true within {timeout_s} s: {expression}')
            await asyncio.sleep(poll_s)

    async def close(self) -> None:
        with suppress(BiDiError, TimeoutError, ConnectionError, aiohttp.ClientError):
            await asyncio.wait_for(self.command('browser.close'), 5)
        self._reader.cancel()
        await self.websocket.close()

    def _value(self, result: dict[str, Any]) -> Any:
        if result['type'] == 'exception':
            details = result['exceptionDetails']
            raise BiDiError(f'the page threw: {details.get("text")}')
        return from_remote(result['result'])

    async def _read(self) -> None:
        async for message in self.websocket:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            waiting = self._answers.pop(data.get('id'), None)  # events (no id) are not subscribed to; ignored
            if waiting and not waiting.done():
                waiting.set_result(data)
        for waiting in self._answers.values():
            if not waiting.done():
                waiting.set_exception(ConnectionError('Firefox closed the BiDi connection'))


def _profile() -> Path:
    folder = Path(tempfile.mkdtemp(prefix='vr-firefox-'))
    lines = [f'user_pref({json.dumps(name)}, {json.dumps(value)});' for name, value in PREFERENCES.items()]
    (folder / 'user.js').write_text('\n'.join(lines) + '\n')
    return folder


def _listening_url(process: 'subprocess.Popen[str]', log: list[str]) -> str:
    """The BiDi address Firefox prints on stderr; the rest of stderr is drained into `log` so it never blocks."""
    url: list[str] = []
    ready = threading.Event()

    def drain() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            log.append(line)
            if not url and (match := LISTENING.search(line)):
                url.append(match.group(1))
                ready.set()
        ready.set()

    threading.Thread(target=drain, daemon=True).start()
    if not ready.wait(START_TIMEOUT_S) or not url:
        raise RuntimeError('Firefox did not start its WebDriver BiDi server:\n' + ''.join(log[-40:]))
    return url[0]


def _stop(process: 'subprocess.Popen[str]') -> None:
    """The whole process group (Firefox starts content processes), SIGTERM first, then SIGKILL."""
    for sig, wait_s in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        if process.poll() is not None:
            break
        with suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=wait_s)
    with suppress(ProcessLookupError):  # content processes that outlived the parent
        os.killpg(process.pid, signal.SIGKILL)


@asynccontextmanager
async def firefox() -> AsyncIterator[Firefox]:
    """Headless Firefox ESR on a fresh profile with a BiDi session on its first tab; stopped (by PID) on exit."""
    executable = require('firefox-esr')
    profile = _profile()
    command = [executable, '--headless', '--remote-debugging-port=0', '--profile', str(profile), '--no-remote']
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, so stopping it stops every process it started
    )
    log: list[str] = []
    http: aiohttp.ClientSession | None = None
    browser: Firefox | None = None
    try:
        url = await asyncio.to_thread(_listening_url, process, log)
        http = aiohttp.ClientSession()
        browser = Firefox(await http.ws_connect(f'{url}/session', max_msg_size=0))
        await browser.open()
        yield browser
    finally:
        if browser:
            await browser.close()
        if http:
            await http.close()
        await asyncio.to_thread(_stop, process)
        shutil.rmtree(profile, ignore_errors=True)
