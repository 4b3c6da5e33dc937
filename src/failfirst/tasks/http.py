"""Simulated HTTP services, reached through the task's own httpx client.

Interception is respx's (a well-kept library that patches httpx's transport layer), so a
task that builds its own ``httpx.Client`` and one that shares a module-level client are
both reached, with no change to the task. Every request a task sends inside a simulated
worker process goes to the run's :class:`ServiceState` for its host, and is three fault
points, in order:

1. ``request``: a step boundary before the request leaves (crash before the call, or a
   pause that can outlive the lease);
2. the network (``request_lost``: the service never sees it; ``response_lost``: the
   service applies it and the reply is lost): either way the task sees a timeout;
3. ``reply``: a step boundary after the service answered and before the task sees the
   answer (crash after the call: the effect is applied, the reply is never read).

The service records every request as a ``call`` event and every effect it applies as an
``applied`` event (see :mod:`failfirst.tasks.checks`). It honours idempotency keys as
payment APIs do (Stripe's ``Idempotency-Key``): a repeat with a key it has seen returns
the first answer and applies nothing. A test can script a route's answers per run:
``ok``, ``error`` (503, nothing applied), ``timeout`` (nothing applied, the task times
out), ``timeout_after_effect`` (applied, the task times out) and ``duplicate`` (the
request arrives twice, as when a proxy retries it).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from failfirst.processor.worker import Point
from failfirst.tasks import greenlets, require_extra

try:
    import httpx
except ModuleNotFoundError:
    require_extra()  # one line naming failfirst[tasks]
    raise

if TYPE_CHECKING:
    from failfirst.tasks.world import Attempt

#: Scripted answers a route can be given (consumed in order, one per request, per run).
ANSWERS = ("ok", "error", "timeout", "timeout_after_effect", "duplicate")
#: Requests one service answers in one run: a task in a loop must not run forever.
MAX_REQUESTS_PER_RUN = 10_000


class SetupError(BaseException):
    """The test's setup does not match what the task does (say, it calls a host no
    service stands for). A BaseException: no task's ``except Exception`` hides it."""


def _route_name(method: str, path: str) -> str:
    return f"{method.upper()} {path}"


@dataclass(frozen=True)
class Service:
    """A simulated HTTP API at ``base_url``.

    ``effects`` names the routes that change the world (``{"POST /v1/charges":
    "charge"}``): each request to one applies an effect, recorded as an ``applied``
    event; a job's effect through one route is applied at most once (INV_001), or, with
    ``identity``, at most once per identity (a function of the request's JSON body).
    ``respond`` builds the answer of a route (default: 200 with ``{"id": ...}``);
    ``idempotency_header`` is the header the service keys repeats by (None: it ignores
    keys). ``latency_s`` and ``timeout_s`` are simulated seconds.
    """

    base_url: str
    effects: dict[str, str] = field(default_factory=dict)
    name: str = ""
    idempotency_header: str | None = "Idempotency-Key"
    respond: Callable[[httpx.Request, str | None], httpx.Response] | None = None
    identity: Callable[[dict[str, Any]], str] | None = None
    script: dict[str, tuple[str, ...]] = field(default_factory=dict)
    latency_s: float = 0.05
    timeout_s: float = 5.0

    def __post_init__(self) -> None:
        url = httpx.URL(self.base_url)
        if not url.host:
            raise ValueError(f"Service: base_url needs a host, got {self.base_url!r}")
        if not self.name:
            object.__setattr__(self, "name", url.host.split(".")[0])
        for route, answers in self.script.items():
            unknown = set(answers) - set(ANSWERS)
            if unknown:
                raise ValueError(f"Service {self.name}: route {route!r}: unknown answers {sorted(unknown)};"
                                 f" known: {', '.join(ANSWERS)}")
        assert self.latency_s >= 0 and self.timeout_s > 0

    @property
    def host(self) -> str:
        return httpx.URL(self.base_url).host

    def scripted(self, **routes: list[str] | tuple[str, ...]) -> Service:
        """This service with scripted answers: ``scripted(**{"POST /v1/charges": [...]})``."""
        from dataclasses import replace

        return replace(self, script={**self.script, **{r: tuple(a) for r, a in routes.items()}})


class ServiceState:
    """One run's instance of a :class:`Service`: what it has applied, the keys it has seen."""

    def __init__(self, spec: Service, world: Any) -> None:
        self.spec = spec
        self.world = world
        self.applied = 0
        self.requests = 0
        self._by_key: dict[tuple[str, str], httpx.Response] = {}
        self._script = {route: list(answers) for route, answers in spec.script.items()}

    def next_answer(self, route: str) -> str:
        answers = self._script.get(route)
        return answers.pop(0) if answers else "ok"

    def apply(self, attempt: Attempt, request: httpx.Request, route: str) -> httpx.Response:
        """The service receives ``request``: an effect route applies it (once per key),
        any other route just answers. Records the ``call`` and ``applied`` events."""
        self.requests += 1
        if self.requests > MAX_REQUESTS_PER_RUN:
            raise SetupError(f"{self.spec.name}: more than {MAX_REQUESTS_PER_RUN} requests in one run")
        spec = self.spec
        key = request.headers.get(spec.idempotency_header) if spec.idempotency_header else None
        effect = spec.effects.get(route)
        if key is not None and (route, key) in self._by_key:
            attempt.event(spec.name, "call", method=request.method, path=request.url.path, key=key,
                          ok=True, status=self._by_key[(route, key)].status_code, replayed=True)
            return self._by_key[(route, key)]
        ref = None
        if effect is not None:
            self.applied += 1
            ref = f"{effect}_{self.applied}"
            body = _json_body(request)
            identity = spec.identity(body) if spec.identity is not None else None
            attempt.event(spec.name, "applied", service=spec.name, effect=effect, ref=ref,
                          identity=identity, key=key, route=route)
        response = spec.respond(request, ref) if spec.respond else httpx.Response(
            200, json={"id": ref} if ref else {})
        attempt.event(spec.name, "call", method=request.method, path=request.url.path, key=key,
                      ok=response.is_success, status=response.status_code, replayed=False)
        if key is not None and effect is not None:
            self._by_key[(route, key)] = response
        return response


def _json_body(request: httpx.Request) -> dict[str, Any]:
    try:
        body = json.loads(request.content or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


@contextlib.contextmanager
def one_tls_context() -> Iterator[None]:
    """While a proof runs no request leaves the process, yet every ``httpx.Client()`` a
    task builds loads the CA bundle (about 40 ms, most of a schedule's time): build each
    distinct TLS context once and share it. Nothing a task can observe changes."""
    from httpx._transports import default

    original = getattr(default, "create_ssl_context", None)
    if original is None:  # another httpx: slower, still correct
        yield
        return
    made: dict[tuple[Any, ...], Any] = {}

    def shared(verify: Any = True, cert: Any = None, trust_env: bool = True) -> Any:
        try:
            key = (verify, cert, trust_env)
            hash(key)
        except TypeError:
            return original(verify=verify, cert=cert, trust_env=trust_env)
        if key not in made:
            made[key] = original(verify=verify, cert=cert, trust_env=trust_env)
        return made[key]

    default.create_ssl_context = shared
    try:
        yield
    finally:
        default.create_ssl_context = original


def dispatch(request: httpx.Request) -> httpx.Response:
    """respx's side effect for every request: the simulated world answers it."""
    attempt = greenlets.current_attempt()
    if attempt is None:
        raise SetupError(f"{request.method} {request.url}: an httpx request outside a simulated task "
                         "(failfirst intercepts httpx while a proof runs)")
    state = attempt.world.service_for(request.url.host)
    if state is None:
        raise SetupError(f"the task called {request.url.host}, which no Service stands for "
                         f"(declare it: failfirst.tasks.Service({str(request.url.copy_with(path='/'))!r}))")
    return attempt.call(state, request)


def send(attempt: Attempt, state: ServiceState, request: httpx.Request) -> httpx.Response:
    """One request from ``attempt`` to ``state``, with its three fault points."""
    spec = state.spec
    route = _route_name(request.method, request.url.path)
    label = f"{spec.name} {route}"
    greenlets.step(Point("request", attempt.job, spec.latency_s))
    answer = state.next_answer(route)
    if answer != "ok":
        attempt.event(spec.name, "scripted", answer=answer, call=label)
    fault = attempt.ctx.call_fault("network") if answer == "ok" else None
    if fault is not None:
        attempt.event(attempt.worker, fault, point="network", call=label)
    lost_request = fault == "request_lost" or answer == "timeout"
    response = None
    if not lost_request:
        if answer == "error":
            response = httpx.Response(503, json={"error": "unavailable"})
            attempt.event(spec.name, "call", method=request.method, path=request.url.path, ok=False,
                          status=503, key=None, replayed=False, scripted="error")
        else:
            response = state.apply(attempt, request, route)
            if answer == "duplicate":  # a proxy delivers the request a second time
                response = state.apply(attempt, request, route)
    timed_out = lost_request or fault == "response_lost" or answer == "timeout_after_effect"
    wait_s = spec.timeout_s if timed_out else 0.0
    greenlets.step(Point("reply", attempt.job, wait_s))
    if timed_out:
        raise httpx.ReadTimeout(f"no answer from {spec.name} within {spec.timeout_s:g} s", request=request)
    assert response is not None
    response.request = request
    return response
