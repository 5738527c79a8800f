"""Load a page in headless Chromium with no network and report what happened.

Speaks the DevTools protocol over a websocket (``websocket-client``): it records
console errors, uncaught exceptions, every request the page makes, evaluates
expressions in the page and takes a screenshot.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome:", "devtools:")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    # No network: every host resolves nowhere and every proxy is a closed port.
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=http://127.0.0.1:9",
    "--window-size=1366,900",
    "--remote-debugging-port=0",
    # WebGL for plotly's 3D scatter, in software: there is no GPU.
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
)


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclasses.dataclass
class PageLoad:
    """What happened while a page loaded."""

    errors: list[str]
    requests: list[str]
    values: dict[str, Any]
    screenshot: bytes
    pdf: bytes | None = None

    @property
    def outside_requests(self) -> list[str]:
        return [url for url in self.requests if not url.startswith(LOCAL_SCHEMES)]


class _DevTools:
    def __init__(self, ws_url: str) -> None:
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=60, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(
            json.dumps({"id": self.next_id, "method": method, "params": params})
        )
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        if any(e.get("method") == method for e in self.events):
            return
        while time.monotonic() < deadline:
            message = json.loads(self.ws.recv())
            self.events.append(message)
            if message.get("method") == method:
                return
        raise TimeoutError(f"no {method} within {timeout} s")

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate",
            expression=expression,
            awaitPromise=True,
            returnByValue=True,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self) -> None:
        self.ws.close()


def _debugger_url(profile: Path, process: subprocess.Popen, timeout: float) -> str:
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while not port_file.is_file() or not port_file.read_text().strip():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"chromium did not start (exit code {process.poll()})")
        time.sleep(0.1)
    port = int(port_file.read_text().split()[0])
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
        targets = json.load(response)
    return next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"]


def _errors(events: list[dict[str, Any]]) -> list[str]:
    errors = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params["type"] in (
            "error",
            "assert",
        ):
            texts = [str(a.get("value", a.get("description"))) for a in params["args"]]
            errors.append("console: " + " ".join(texts))
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            errors.append(
                "exception: "
                + str(details.get("exception", {}).get("description", details["text"]))
            )
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            errors.append(f"log: {params['entry']['text']}")
    return errors


def load_page(
    path: str | os.PathLike,
    expressions: dict[str, str],
    settle_seconds: float = 1.0,
    timeout: float = 120.0,
    full_page: bool = False,
    print_media: bool = False,
    pdf: bool = False,
) -> PageLoad:
    """Open ``path`` from disk, wait for it to load and settle, evaluate
    ``expressions`` (name -> JavaScript) and take a screenshot (of the first
    screen, or with ``full_page`` of the whole page). ``print_media`` lays the page
    out as for printing; ``pdf`` also prints it to PDF (A4, CSS page size)."""
    binary = find_chromium()
    if binary is None:
        raise FileNotFoundError("no chromium on PATH")
    with tempfile.TemporaryDirectory(prefix="lb-chromium-") as profile:
        process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "http_proxy": "", "https_proxy": ""},
        )
        try:
            tools = _DevTools(_debugger_url(Path(profile), process, timeout))
            for domain in ("Runtime", "Log", "Network", "Page"):
                tools.call(f"{domain}.enable")
            if print_media:
                tools.call("Emulation.setEmulatedMedia", media="print")
            tools.call("Page.navigate", url=Path(path).resolve().as_uri())
            tools.wait_for("Page.loadEventFired", timeout)
            tools.evaluate(f"new Promise(r => setTimeout(r, {1000 * settle_seconds}))")
            values = {name: tools.evaluate(js) for name, js in expressions.items()}
            if full_page:
                height = tools.evaluate("document.documentElement.scrollHeight")
                tools.call(
                    "Emulation.setDeviceMetricsOverride",
                    width=1366,
                    height=int(height),
                    deviceScaleFactor=1,
                    mobile=False,
                )
                tools.evaluate("new Promise(r => setTimeout(r, 500))")
            shot = tools.call("Page.captureScreenshot", format="png")
            printed = None
            if pdf:
                result = tools.call("Page.printToPDF", preferCSSPageSize=True)
                printed = base64.b64decode(result["data"])
            tools.evaluate("0")  # collect the events queued meanwhile
            tools.close()
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    requests = [
        e["params"]["request"]["url"]
        for e in tools.events
        if e.get("method") == "Network.requestWillBeSent"
    ]
    return PageLoad(
        errors=_errors(tools.events),
        requests=requests,
        values=values,
        screenshot=base64.b64decode(shot["data"]),
        pdf=printed,
    )
