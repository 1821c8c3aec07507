"""The player element: the Python half of `assets/player.js`, a recording's own controls around a hidden `<audio>`."""

from collections.abc import Awaitable, Callable

from nicegui import ui


class AudioPlayer(
    ui.element,
    component='../assets/player.js',
    dependencies=['../assets/recorder/duration.mjs', '../assets/recorder/signed_url.mjs'],
):
    """Play/pause, 15 s back and forward, the speed and the time. The audio URL it plays is signed and expires
    (`VR_AUDIO_URL_EXPIRY_S`): the browser asks for a fresh one before that, or when loading fails, through
    `fresh_url` (None: refused, e.g. the session ended), and goes on from the same moment."""

    def __init__(
        self,
        audio: ui.audio,
        *,
        duration_ms: int | None,
        lifetime_s: int,
        fresh_url: Callable[[], Awaitable[str | None]],
    ) -> None:
        super().__init__()
        self.audio = audio
        self.fresh_url = fresh_url
        self._props['audioId'] = audio.id
        self._props['durationMs'] = duration_ms or 0
        self._props['lifetimeS'] = lifetime_s
        self.on('refresh', self.refresh)

    async def refresh(self) -> None:
        url = await self.fresh_url()
        if url is None:
            return
        self.audio._props['src'] = url  # what a re-render would use; the browser swaps it itself, at the same moment
        self.run_method('useUrl', url)
