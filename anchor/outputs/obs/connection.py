"""One supervised connection to one OBS Studio, over obs-websocket v5 (obs-websocket-py 1.0 underneath).

The library blocks, has no connect timeout, waits 60 s for answers by default, loses OBS's error codes,
dies silently when OBS is killed mid-request, and runs event callbacks on its own receive thread
(notes/libraries.md). So here:

- every blocking step (connect, request, teardown) runs on this connection's own worker threads, never
  on the event loop; requests are serialised by a lock and bounded by `request_timeout`;
- the websocket has a socket timeout (bounded handshake and sends) and ignores `http_proxy`;
- a receive thread of our own keeps OBS's request status (code, comment) and reports a lost connection
  at once, waking any request that waits for an answer;
- a supervisor task connects, runs the `on_connected` hooks, pings (GetVersion) every `ping_interval`,
  and on any transport failure (timeout, reset, close, refused, wrong password) throws the client away
  and reconnects with capped exponential backoff, logging each distinct error once;
- OBS events are handed to the loop with `call_soon_threadsafe`: `next_event()` waits for one,
  `subscribe()` runs an async handler for each.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import websocket
from obswebsocket.exceptions import MessageTimeout

from anchor import metrics
from anchor.credentials import credential_file_name, env_name
from anchor.outputs.obs.client import TRANSPORT_ERRORS, AuthFailed, Client, call_blocking
from anchor.outputs.obs.errors import ObsError, ObsRequestError, ObsUnavailable
from anchor.outputs.obs.settings import PASSWORD

log = logging.getLogger(__name__)


HIGH_VOLUME = frozenset({"InputVolumeMeters"})
Hook = Callable[["ObsConnection"], Awaitable[None]]
EventHandler = Callable[[dict[str, Any]], Awaitable[None]]
Predicate = Callable[[dict[str, Any]], bool]


def backoff_delays(initial: float = 0.5, maximum: float = 10.0) -> Iterator[float]:
    """0.5, 1, 2, 4, 8, 10, 10, … seconds between reconnection attempts."""
    delay = initial
    while True:
        yield delay
        delay = min(delay * 2, maximum)



@dataclass
class _Waiter:
    name: str
    predicate: Predicate | None
    future: asyncio.Future[dict[str, Any]]


class ObsConnection:
    """One OBS, always being connected to. Use from one event loop.

    call() raises ObsUnavailable when not connected (never waits for a connection; see wait_connected)
    and ObsRequestError when OBS refuses a request; it never takes longer than its timeout.
    `on_connected` hooks (async, given this connection) run after every (re)connection, before
    wait_connected() returns: re-provision OBS there. A hook must not await wait_connected().
    """

    def __init__(self, name: str, host: str, port: int, password: str | None, *, request_timeout: float = 3.0,
                 connect_timeout: float = 5.0, ping_interval: float = 2.0, backoff_initial: float = 0.5,
                 backoff_max: float = 10.0) -> None:
        self.name = name
        self.host = host
        self.port = port
        self._password = password
        self.request_timeout = request_timeout
        self.connect_timeout = connect_timeout
        self.ping_interval = ping_interval
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.on_connected: list[Hook] = []
        # State, for logs, metrics and `anchor obs status`.
        self.obs_version: str | None = None
        self.websocket_version: str | None = None
        self.last_error: str | None = None
        self.reconnects = 0  # connections made after a lost one
        self.attempts = 0  # connection attempts, successful or not
        self.ping_rtt: float | None = None  # seconds, last GetVersion ping
        self._ever_connected = False
        self._announced = False  # a "connected" line was logged, so a loss is worth a line too
        self._client: Client | None = None
        self._connecting: Client | None = None
        self._lost = asyncio.Event()
        self._ready = asyncio.Event()
        self._attempted = asyncio.Event()  # a connection attempt has ended, well or not
        self._lock = asyncio.Lock()
        self._executor = ThreadPoolExecutor(max_workers=3, thread_name_prefix=f"obs-{name}")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._events: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self._waiters: list[_Waiter] = []
        self._handlers: dict[str, list[EventHandler]] = {}
        self._logged: set[str] = set()
        self._closed = False

    def __repr__(self) -> str:
        state = "connected" if self.connected else f"down ({self.last_error})"
        return f"<ObsConnection {self.name} {self.host}:{self.port} {state}>"

    @property
    def connected(self) -> bool:
        return self._client is not None and not self._client.closed

    @property
    def ready(self) -> bool:
        """Connected and the on_connected hooks of this connection have run."""
        return self.connected and self._ready.is_set()

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start connecting in the background; returns at once."""
        if self._supervisor is not None:
            return
        if self._closed:
            raise ObsError(f"OBS '{self.name}': the connection was closed")
        self._loop = asyncio.get_running_loop()
        self._supervisor = asyncio.create_task(self._supervise(), name=f"obs-{self.name}-supervisor")
        self._dispatcher = asyncio.create_task(self._dispatch_handlers(), name=f"obs-{self.name}-events")

    async def wait_connected(self, timeout: float) -> None:
        """Until connected and the on_connected hooks have run; ObsUnavailable after `timeout` seconds."""
        try:
            async with asyncio.timeout(timeout):
                while not self.ready:
                    await self._ready.wait()
                    await asyncio.sleep(0)
        except TimeoutError:
            raise ObsUnavailable(f"OBS '{self.name}' at {self.host}:{self.port} not connected within "
                                 f"{timeout:g} s: {self.last_error or 'no answer yet'}") from None

    async def wait_first_attempt(self, timeout: float) -> None:
        """For one-shot commands: until connected, or ObsUnavailable as soon as the first attempt fails
        (a refused connection answers at once: no point waiting out the timeout)."""
        try:
            async with asyncio.timeout(timeout):
                await self._attempted.wait()
        except TimeoutError:
            pass
        if not self.ready:
            raise ObsUnavailable(f"OBS '{self.name}' at {self.host}:{self.port}: "
                                 f"{self.last_error or f'no answer within {timeout:g} s'}")

    async def close(self) -> None:
        """Stop reconnecting, drop the connection, fail pending next_event() waits. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for task in (self._supervisor, self._dispatcher):
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in (self._supervisor, self._dispatcher) if t is not None),
                             return_exceptions=True)
        for client in (self._client, self._connecting):
            if client is not None:
                client.lose("closed by anchor")
                await self._in_thread(client.disconnect, timeout=3.0, quiet=True)
        self._client = self._connecting = None
        self._ready.clear()
        for waiter in list(self._waiters):
            if not waiter.future.done():
                waiter.future.set_exception(ObsUnavailable(f"OBS '{self.name}': connection closed"))
        self._waiters.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- requests ----------------------------------------------------------------------------------

    async def call(self, request_name: str, /, *, request_timeout: float | None = None,
                   **data: Any) -> dict[str, Any]:
        """Send one obs-websocket v5 request; returns its responseData (a dict, maybe empty).

        `data` are the request's fields, as the protocol names them (sceneName=…, inputSettings={…})."""
        timeout = self.request_timeout if request_timeout is None else request_timeout
        client = self._client
        if client is None or client.closed:
            raise ObsUnavailable(self._down_message(request_name))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            async with asyncio.timeout(timeout):
                await self._lock.acquire()
        except TimeoutError:
            raise ObsUnavailable(f"OBS '{self.name}': {request_name} not sent: an earlier request held the "
                                 f"connection for {timeout:g} s") from None
        try:
            if client is not self._client or client.closed:
                raise ObsUnavailable(self._down_message(request_name))
            remaining = max(deadline - loop.time(), 0.05)
            future = loop.run_in_executor(self._executor, call_blocking, client, request_name, data, remaining)
        except BaseException:
            self._lock.release()
            raise
        future.add_done_callback(self._request_finished)  # the lock is held until the thread is done
        sent = time.monotonic()
        try:
            ok, answer, status = await asyncio.shield(future)
        except TRANSPORT_ERRORS as exc:
            if client.closed:
                reason = client.lost_reason or "connection lost"
            elif isinstance(exc, MessageTimeout):
                reason = f"no answer to {request_name} within {remaining:.1f} s"
            else:
                reason = f"{request_name}: {_describe(exc)}"
            self._transport_lost(client, reason)
            raise ObsUnavailable(f"OBS '{self.name}': {request_name} failed: {reason}") from None
        metrics.OBS_REQUEST_SECONDS.labels(self.name).observe(time.monotonic() - sent)  # answered, yes or no
        if not ok:
            raise ObsRequestError(self.name, request_name, data, status.get("code"), status.get("comment"))
        return answer

    def _request_finished(self, future: asyncio.Future[Any]) -> None:
        self._lock.release()
        if not future.cancelled():
            future.exception()  # retrieved: a caller cancelled meanwhile must not leave a warning

    # -- events ------------------------------------------------------------------------------------

    def next_event(self, name: str, predicate: Predicate | None = None,
                   timeout: float = 10.0) -> asyncio.Future[dict[str, Any]]:
        """The next OBS event `name` (its eventData) for which `predicate` holds.

        Registers at once, so it can be created before the request that causes the event:
            changed = conn.next_event("CurrentProgramSceneChanged", lambda d: d["sceneName"] == "B")
            await conn.call("SetCurrentProgramScene", sceneName="B")
            await changed
        Raises TimeoutError after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        waiter = _Waiter(name, predicate, future)
        self._waiters.append(waiter)

        def expire() -> None:
            if not future.done():
                future.set_exception(TimeoutError(f"OBS '{self.name}': no {name} event within {timeout:g} s"))

        timer = loop.call_later(timeout, expire)

        def forget(_: asyncio.Future[dict[str, Any]]) -> None:
            timer.cancel()
            if waiter in self._waiters:
                self._waiters.remove(waiter)

        future.add_done_callback(forget)
        return future

    def subscribe(self, name: str, handler: EventHandler) -> Callable[[], None]:
        """Run `await handler(eventData)` for every event `name`, in order; returns an unsubscribe function."""
        self._handlers.setdefault(name, []).append(handler)

        def unsubscribe() -> None:
            handlers = self._handlers.get(name, [])
            if handler in handlers:
                handlers.remove(handler)

        return unsubscribe

    def _event_from_thread(self, name: str, data: dict[str, Any]) -> None:
        """On the receive thread: hand over to the loop, never call OBS from here."""
        loop = self._loop
        if loop is None:
            return
        if name in HIGH_VOLUME and not self._handlers.get(name) and not any(w.name == name for w in self._waiters):
            return  # twenty meter readings a second wake the loop only while someone listens
        try:
            loop.call_soon_threadsafe(self._deliver, name, data)
        except RuntimeError:
            pass  # the loop is closed: nobody is listening any more

    def _deliver(self, name: str, data: dict[str, Any]) -> None:
        for waiter in list(self._waiters):
            if waiter.name != name or waiter.future.done():
                continue
            try:
                matches = waiter.predicate is None or bool(waiter.predicate(data))
            except Exception as exc:
                waiter.future.set_exception(exc)
                continue
            if matches:
                waiter.future.set_result(data)
        if self._handlers.get(name):
            self._events.put_nowait((name, data))

    async def _dispatch_handlers(self) -> None:
        while True:
            name, data = await self._events.get()
            for handler in list(self._handlers.get(name, [])):
                try:
                    await handler(data)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("OBS '%s': handler %r for %s failed", self.name, handler, name)

    # -- supervision -------------------------------------------------------------------------------

    async def _supervise(self) -> None:
        delays = backoff_delays(self.backoff_initial, self.backoff_max)
        while True:
            try:
                client = await self._connect_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never let the supervisor die: log, back off, try again
                log.exception("OBS '%s': unexpected error while connecting", self.name)
                client, self.last_error = None, f"unexpected error: {exc!r}"
            if client is None:
                self._attempted.set()
                await asyncio.sleep(self._failed(next(delays)))
                continue
            delays = backoff_delays(self.backoff_initial, self.backoff_max)
            await self._run_hooks()
            if self.connected:
                self._ready.set()
            self._attempted.set()
            await self._watch(client)
            self._ready.clear()
            await self._in_thread(client.disconnect, quiet=True)

    async def _connect_once(self) -> Client | None:
        """One attempt: connect, identify, GetVersion. The client, or None with last_error set."""
        client = Client(self.host, self.port, self._password, request_timeout=self.request_timeout,
                         connect_timeout=self.connect_timeout, on_event=self._event_from_thread,
                         on_lost=self._lost_from_thread)
        self.attempts += 1
        self._connecting = client
        try:
            await self._in_thread(client.connect)
        except asyncio.CancelledError:
            client.lose("closed by anchor")  # the thread may still be connecting: it must not go on
            raise
        except Exception as exc:
            client.lose("connect failed")
            self.last_error = self._connect_error(exc)
            return None
        finally:
            self._connecting = None
        self._lost.clear()
        self._client = client
        try:
            version = await self.call("GetVersion")
        except ObsError as exc:
            self._transport_lost(client, str(exc))
            await self._in_thread(client.disconnect, quiet=True)
            self.last_error = str(exc)
            return None
        self.obs_version = version.get("obsVersion")
        self.websocket_version = version.get("obsWebSocketVersion")
        if self._ever_connected:
            self.reconnects += 1
        self._ever_connected = True
        self._logged.clear()
        self._announced = True
        log.info("OBS '%s' connected at %s:%d (OBS %s, obs-websocket %s)%s", self.name, self.host, self.port,
                 self.obs_version, self.websocket_version,
                 f", reconnection {self.reconnects}" if self.reconnects else "")
        return client

    def _failed(self, delay: float) -> float:
        """Log a failed attempt once per distinct reason; returns the delay before the next one."""
        reason = self.last_error or "unknown error"
        if reason in self._logged:
            log.debug("OBS '%s': %s (attempt %d; retrying in %g s)", self.name, reason, self.attempts, delay)
            return delay
        self._logged.add(reason)
        level = logging.ERROR if "password" in reason else logging.WARNING
        log.log(level, "OBS '%s' at %s:%d: %s; retrying with backoff (%g s, up to %g s)", self.name, self.host,
                self.port, reason, delay, self.backoff_max)
        return delay

    async def _run_hooks(self) -> None:
        for hook in list(self.on_connected):
            if not self.connected:
                return
            try:
                await hook(self)
            except asyncio.CancelledError:
                raise
            except ObsError as exc:
                log.warning("OBS '%s': on_connected hook %s failed: %s", self.name, _hook_name(hook), exc)
            except Exception:
                log.exception("OBS '%s': on_connected hook %s failed", self.name, _hook_name(hook))

    async def _watch(self, client: Client) -> None:
        """Ping until the connection is lost."""
        while not client.closed:
            try:
                async with asyncio.timeout(self.ping_interval):
                    await self._lost.wait()
            except TimeoutError:
                pass
            if client.closed:
                return
            started = time.monotonic()
            try:
                await self.call("GetVersion")
                self.ping_rtt = time.monotonic() - started
            except ObsError:
                pass  # a lost connection was marked by call(); a busy one is not lost

    def _lost_from_thread(self, client: Client, reason: str) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(self._transport_lost, client, reason)
        except RuntimeError:
            pass

    def _transport_lost(self, client: Client, reason: str) -> None:
        """On the loop: `client` is dead. Only the current client's death changes the state."""
        client.lose(reason)
        if client is not self._client:
            return
        self._client = None
        self._ready.clear()
        self.last_error = reason
        self._lost.set()
        if self._announced and not self._closed:
            self._announced = False
            log.warning("OBS '%s' at %s:%d: connection lost: %s; reconnecting", self.name, self.host, self.port,
                        reason)

    def _connect_error(self, exc: BaseException) -> str:
        if isinstance(exc, AuthFailed):
            if not self._password:
                return (f"OBS requires a password and none is configured: set {env_name(PASSWORD, self.name)} "
                        f"or the credential {credential_file_name(PASSWORD, self.name)}")
            return (f"OBS refused the password (authentication failed): check {env_name(PASSWORD, self.name)} "
                    f"or the credential {credential_file_name(PASSWORD, self.name)} against OBS's WebSocket Server "
                    "Settings")
        if isinstance(exc, ConnectionRefusedError):
            return "connection refused: is OBS running with its WebSocket server enabled on this port?"
        if isinstance(exc, (websocket.WebSocketTimeoutException, TimeoutError)):
            return f"no answer within {self.connect_timeout:g} s: OBS frozen, overloaded or unreachable"
        return _describe(exc)

    def _down_message(self, request: str) -> str:
        why = self.last_error or "not connected yet"
        return f"OBS '{self.name}' at {self.host}:{self.port} is not connected ({why}): {request} not sent"

    async def _in_thread(self, function: Callable[[], Any], timeout: float | None = None,
                         quiet: bool = False) -> Any:
        """Run a blocking client step on this connection's threads; the loop never waits on a socket."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, function)
        try:
            if timeout is None:
                return await future
            async with asyncio.timeout(timeout):
                return await future
        except Exception as exc:
            if not quiet:
                raise
            log.debug("OBS '%s': %s: %s", self.name, getattr(function, "__name__", function), exc)
            return None


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    return text


def _hook_name(hook: Hook) -> str:
    return getattr(hook, "__qualname__", None) or repr(hook)
