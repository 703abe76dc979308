"""Email: send a message through an SMTP server (ragflow ``agent/tools/email.py``, spec §5.2).

As in ragflow: port 465 means SMTP over TLS, any other port plain SMTP upgraded with STARTTLS
(required); the login is ``smtp_username``, else the sender address; the body is sent as HTML
(``MIMEText(content, "html", "utf-8")``) in a ``multipart/alternative`` message whose ``From``
carries ``sender_name``, ``To`` the ``to_email`` and ``Cc`` the ``cc_email`` (comma separated,
all of them recipients). The ``success`` output says whether it was sent. A refused login is
"SMTP Authentication failed. ..." and is not retried; an SMTP error is "SMTP error occurred:
..." and is retried ``max_retries`` times (the engine's retries stand in for ragflow's own loop);
anything else is "Unexpected error: ..." without retry. An empty ``to_email`` sends nothing:
``success`` is false and there is no error.

Differences: the SMTP server goes through the SSRF guard (the HTTP policy's rules, see
:func:`taskcanvas.tools.http.check_host`) — ragflow's Email checks nothing — and the connection
goes to the checked address while TLS still verifies the server's name. A private CA for the
server's certificate can be named in the settings (``[tools.email] ca_file = "/etc/ssl/corp.pem"``);
without it the system's trust store is used, as in ragflow.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import socket
import ssl
from collections.abc import Mapping
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr
from typing import Any, ClassVar

from pydantic import Field, ValidationInfo, field_validator

from taskcanvas.runtime.component import RunContext
from taskcanvas.runtime.state import RunState
from taskcanvas.runtime.stream import TextStream
from taskcanvas.runtime.templates import stringify
from taskcanvas.tools.base import Tool, ToolMeta, ToolParams
from taskcanvas.tools.http import SsrfBlocked, check_host, run_policy

__all__ = ["Email", "EmailParams"]

_log = logging.getLogger(__name__)

_META: ToolMeta = {
    "name": "email",
    "description": "The email is a method of electronic communication for sending and receiving information through "
                   "the Internet. This tool helps users to send emails to one person or to multiple recipients with "
                   "support for CC, BCC, file attachments, and markdown-to-HTML conversion.",
    "parameters": {
        "to_email": {"type": "string", "description": "The target email address.", "default": "{sys.query}",
                     "required": True},
        "cc_email": {"type": "string", "description": "The other email addresses needs to be send to. Comma splited.",
                     "default": "", "required": False},
        "content": {"type": "string", "description": "The content of the email.", "default": "", "required": False},
        "subject": {"type": "string", "description": "The subject/title of the email.", "default": "",
                    "required": False},
    },
}

AUTH_FAILED = "SMTP Authentication failed. Please check your SMTP username(email) and authorization code."
_SOCKET_TIMEOUT = 10
_REQUIRED = {"smtp_server": "SMTP Server", "email": "Email", "password": "Password", "sender_name": "Sender Name"}


class EmailParams(ToolParams):
    to_email: Any = "{sys.query}"
    cc_email: Any = ""
    content: Any = ""
    subject: Any = ""
    smtp_server: str = Field(default="", validate_default=True)
    smtp_port: int = 465
    email: str = Field(default="", validate_default=True)
    smtp_username: str | None = ""
    password: str = Field(default="", validate_default=True)
    sender_name: str = Field(default="", validate_default=True)

    @field_validator("smtp_server", "email", "password", "sender_name", mode="before")
    @classmethod
    def _not_empty(cls, v: Any, info: ValidationInfo) -> Any:
        if not v:
            raise ValueError(f"{info.field_name} must not be empty ({_REQUIRED[str(info.field_name)]})")
        return v

    @field_validator("smtp_port", mode="before")
    @classmethod
    def _port(cls, v: Any) -> Any:
        try:
            port = int(v)
        except (TypeError, ValueError):
            port = 0
        if isinstance(v, bool) or not 0 < port < 65536:
            raise ValueError(f"smtp_port {v!r} is not supported: it is a port number")
        return port


class _SmtpRetry(Exception):
    """A failure ragflow retries (cannot connect, an SMTP error)."""


class Email(Tool):
    component_name = "Email"
    Params = EmailParams
    meta: ClassVar[ToolMeta] = _META
    timeout = 60.0

    def thoughts(self, state: RunState) -> str:
        return "\nTo: {}\nSubject: {}\nYour email is on its way—sit tight!\n".format(
            self._shown(state, "to_email"), self._shown(state, "subject"))

    def _shown(self, state: RunState, name: str) -> Any:
        value = getattr(self.params, name, None)
        try:
            if isinstance(value, str) and state.is_ref(value):
                value = state.get_variable_value(value)
        except Exception:
            return "-_-!"
        if isinstance(value, TextStream):
            value = value.text
        return "-_-!" if value is None else value

    async def call(self, ctx: RunContext, **args: Any) -> Any:
        params = self.params
        assert isinstance(params, EmailParams)
        state = ctx.state
        to_email = _text(args.get("to_email"))
        if not to_email:
            state.set_output(self.id, "success", False)
            return ""

        msg = MIMEMultipart("alternative")
        msg["From"] = formataddr((str(Header(params.sender_name, "utf-8")), params.email))
        msg["To"] = to_email
        cc_email = _text(args.get("cc_email"))
        if cc_email:
            msg["Cc"] = cc_email
        msg["Subject"] = Header(_text(args.get("subject", "No Subject")), "utf-8").encode()
        msg.attach(MIMEText(_text(args.get("content", "No content provided")), "html", "utf-8"))
        recipients = [to_email]
        if cc_email:
            recipients.extend(cc_email.split(","))

        host = params.smtp_server.strip()
        try:
            addresses = await check_host(host, run_policy(ctx), params.smtp_port)
        except SsrfBlocked as e:
            return self._failed(state, f"SMTP server '{host}' is not allowed: {e.reason}")
        context = _ssl_context(ctx)
        _log.info("Email %s: connecting to SMTP server %s:%s", self.id, host, params.smtp_port)
        try:
            await asyncio.to_thread(_send, params, host, addresses, context, msg, recipients)
        except smtplib.SMTPAuthenticationError:
            return self._failed(state, AUTH_FAILED)
        except smtplib.SMTPConnectError:
            raise _SmtpRetry(f"Failed to connect to SMTP server {host}:{params.smtp_port}") from None
        except smtplib.SMTPException as e:
            raise _SmtpRetry(f"SMTP error occurred: {e}") from None
        except Exception as e:
            return self._failed(state, f"Unexpected error: {e}")
        state.set_output(self.id, "success", True)
        return True

    def _failed(self, state: RunState, message: str) -> bool:
        _log.warning("Email %s: %s", self.id, message)
        state.set_output(self.id, "_ERROR", message)
        state.set_output(self.id, "success", False)
        return False


def _text(value: Any) -> str:
    if isinstance(value, TextStream):
        return value.text
    return value if isinstance(value, str) else stringify(value)



def _ssl_context(ctx: RunContext) -> ssl.SSLContext:
    settings = ctx.services.get("settings")
    tools = settings.section("tools") if settings is not None else {}
    table = tools.get("email") if isinstance(tools, Mapping) else None
    ca_file = table.get("ca_file") if isinstance(table, Mapping) else None
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


# --------------------------------------------------------------------------- SMTP (in a worker thread)
class _PinnedSMTP(smtplib.SMTP):
    """smtplib's client connecting to a checked address; STARTTLS still verifies ``host``."""

    def __init__(self, address: str, host: str, port: int) -> None:
        self._address = address
        super().__init__(host, port, timeout=_SOCKET_TIMEOUT)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return super()._get_socket(self._address, port, timeout)  # type: ignore[misc,no-any-return]


class _PinnedSMTPSSL(smtplib.SMTP_SSL):
    """SMTP over TLS to a checked address, the certificate verified for ``host``."""

    def __init__(self, address: str, host: str, port: int, context: ssl.SSLContext) -> None:
        self._address = address
        super().__init__(host, port, timeout=_SOCKET_TIMEOUT, context=context)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return super()._get_socket(self._address, port, timeout)  # type: ignore[misc,no-any-return]


def _connect(params: EmailParams, host: str, addresses: list[str], context: ssl.SSLContext) -> smtplib.SMTP:
    failure: OSError | None = None
    for address in addresses:
        try:
            if params.smtp_port == 465:
                return _PinnedSMTPSSL(address, host, params.smtp_port, context)
            return _PinnedSMTP(address, host, params.smtp_port)
        except OSError as e:  # refused, unreachable: try the host's next address
            failure = e
    assert failure is not None
    raise failure


def _send(params: EmailParams, host: str, addresses: list[str], context: ssl.SSLContext, msg: MIMEMultipart,
          recipients: list[str]) -> None:
    server = _connect(params, host, addresses, context)
    with server:
        server.ehlo()
        if params.smtp_port != 465:
            server.starttls(context=context)
            server.ehlo()
        username = params.smtp_username or params.email
        _log.info("Email: logging in as %s", username)
        server.login(username, params.password)
        _log.info("Email: sending to %s", recipients)
        try:
            server.send_message(msg, params.email, recipients)
        except Exception as e:
            _log.error("Email: send_message failed (%s); trying sendmail", e)
            server.sendmail(params.email, recipients, msg.as_string())
        try:
            server.quit()
        except Exception as e:
            _log.warning("Email: non-fatal error while closing the connection: %s", e)
