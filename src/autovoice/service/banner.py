"""The few lines ``autovoice serve`` prints when the server is up: where to click, and how it runs."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit, urlunsplit

from autovoice import __version__
from autovoice.config import Settings

_ANY = {"0.0.0.0", "::", ""}  # nosec B104 # wildcard bind addresses, recognised (not bound) here


def _url_host(host: str) -> str:
    """The host as it goes in a URL a person can open: wildcards become loopback, IPv6 gets brackets."""
    if host in _ANY:
        return "[::1]" if host == "::" else "127.0.0.1"
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]"
    except ValueError:  # a host name
        pass
    return host


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (``redis://:secret@host/0`` -> ``redis://:***@host/0``)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port is not None else "")
    return urlunsplit(parts._replace(netloc=netloc))


def startup_banner(
    settings: Settings,
    host: str,
    port: int,
    *,
    device: str | None = None,
    api_keys_required: bool | None = None,
    web_page: bool | None = None,
) -> str:
    """The start-up banner of ``autovoice serve`` (several lines, no trailing newline).

    Parameters
    ----------
    settings
        The server's settings (mode, data dir, device setting, API key policy).
    host, port
        The address the server binds; a wildcard (``0.0.0.0``, ``::``) is shown as loopback.
    device
        The resolved device (``cpu``, ``cuda:0``); default: the ``device`` setting as written.
    api_keys_required
        Whether requests need an API key; default: what the settings and ``host`` imply.
    web_page
        Whether the web page is installed; default: look for it.
    """
    from autovoice.service.auth import api_key_required
    from autovoice.service.routing import web_page_dir

    base = f"http://{_url_host(host)}:{port}"
    required = api_key_required(settings, host) if api_keys_required is None else api_keys_required
    has_page = web_page_dir() is not None if web_page is None else web_page
    if settings.broker_url:
        mode = f"distributed: jobs go to `autovoice worker` processes via {redact_url(settings.broker_url)}"
    else:
        n = settings.job_workers
        mode = f"embedded: jobs run in this process, {n} at a time"
    if required:
        keys = "required (create one with `autovoice apikey create NAME`)"
    else:
        keys = "not required"
        if host in _ANY or not _is_loopback(host):
            keys += ": anyone who can reach this address can use the API"
    listen = f"{host}:{port}" + (" (all interfaces)" if host in _ANY else "")
    rows = [
        ("Web page", f"{base}/" if has_page else "not installed in this build"),
        ("API docs", f"{base}/docs"),
        ("Listening", listen),
        ("Mode", mode),
        ("Data dir", str(settings.data_dir)),
        ("Device", device or settings.device),
        ("API keys", keys),
    ]
    lines = [f"AutoVoice {__version__} is running."]
    lines += [f"  {label + ':':<11}{value}" for label, value in rows]
    lines.append("Press Ctrl+C to stop.")
    return "\n".join(lines)


def _is_loopback(host: str) -> bool:
    from autovoice.service.auth import is_loopback

    return is_loopback(host)
