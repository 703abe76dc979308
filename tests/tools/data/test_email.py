"""Email through the engine against a real SMTP server (aiosmtpd) on 127.0.0.1, with TLS from a test CA."""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from taskcanvas.config import Settings
from taskcanvas.tools.email_tool import AUTH_FAILED, Email
from tests.support.canvas import build, cpn, make_canvas
from tests.tools.data.support import run_tool, settings

USER, PASSWORD = "bot@example.com", "app-password"

RAGFLOW_SCHEMA = {
    "type": "function",
    "function": {
        "name": "email",
        "description": "The email is a method of electronic communication for sending and receiving information "
                       "through the Internet. This tool helps users to send emails to one person or to multiple "
                       "recipients with support for CC, BCC, file attachments, and markdown-to-HTML conversion.",
        "parameters": {
            "type": "object",
            "properties": {
                "to_email": {"type": "string", "description": "The target email address."},
                "cc_email": {"type": "string",
                             "description": "The other email addresses needs to be send to. Comma splited."},
                "content": {"type": "string", "description": "The content of the email."},
                "subject": {"type": "string", "description": "The subject/title of the email."},
            },
            "required": ["to_email"],
        },
    },
}


@dataclass
class Mailbox:
    """The SMTP server's handler: keeps what it receives; refuses recipients at refused.example."""

    envelopes: list[Envelope] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if address.endswith("@refused.example"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                     auth_data: Any) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            self.logins.append(auth_data.login.decode())
            ok = auth_data.login.decode() == USER and auth_data.password.decode() == PASSWORD
            return AuthResult(success=ok, handled=False)
        return AuthResult(success=False, handled=False)

    def message(self, index: int = -1) -> EmailMessage:
        raw = self.envelopes[index].original_content or b""
        return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def _server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(mailbox: Mailbox, port: int, **kw: Any) -> Controller:
    # Over implicit TLS (port 465) aiosmtpd does not know the session is encrypted.
    kw.setdefault("auth_require_tls", "ssl_context" not in kw)
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, authenticator=mailbox.authenticate, **kw)
    controller.start()
    return controller


@pytest.fixture
def starttls(ca: trustme.CA) -> Iterator[tuple[Mailbox, int]]:
    mailbox, port = Mailbox(), _free_port()
    controller = _start(mailbox, port, tls_context=_server_context(ca), require_starttls=True)
    try:
        yield mailbox, port
    finally:
        controller.stop()


def _params(port: int, **extra: Any) -> dict[str, Any]:
    return {"smtp_server": "127.0.0.1", "smtp_port": port, "email": USER, "password": PASSWORD,
            "sender_name": "Report Bot", **extra}


def _config(ca_file: Path) -> Settings:
    return settings(tools={"email": {"ca_file": str(ca_file)}})


async def test_sends_with_starttls(starttls: tuple[Mailbox, int], ca_file: Path, http: Any) -> None:
    mailbox, port = starttls
    params = _params(port, cc_email="bob@example.com,carol@example.com", subject="Weekly report",
                     content="<p>All <b>green</b>.</p>", sender_name="报告机器人")
    turn = await run_tool(Email, params, http=http, config=_config(ca_file), query="alice@example.com",
                          message="sent: {tool@success}")
    assert turn.error is None, turn.error
    assert turn.output("tool", "success") is True
    assert turn.text == "sent: true"
    assert mailbox.logins == [USER]
    envelope = mailbox.envelopes[0]
    assert envelope.mail_from == USER
    assert envelope.rcpt_tos == ["alice@example.com", "bob@example.com", "carol@example.com"]
    msg = mailbox.message()
    assert msg["To"] == "alice@example.com"
    assert [a.addr_spec for a in msg["Cc"].addresses] == ["bob@example.com", "carol@example.com"]
    assert msg["Subject"] == "Weekly report"
    assert msg["From"].addresses[0].display_name == "报告机器人"
    assert msg["From"].addresses[0].addr_spec == USER
    assert msg.get_content_type() == "multipart/alternative"
    body = msg.get_body(("html",))
    assert body is not None
    assert body.get_content() == "<p>All <b>green</b>.</p>"
    started = next(d for d in turn.of("node_started") if d["component_id"] == "tool")
    assert started["thoughts"] == ("\nTo: alice@example.com\nSubject: Weekly report\n"
                                   "Your email is on its way—sit tight!\n")


async def test_sends_over_tls_on_465(ca: trustme.CA, ca_file: Path, http: Any) -> None:
    mailbox = Mailbox()
    try:
        controller = _start(mailbox, 465, ssl_context=_server_context(ca))
    except (PermissionError, OSError, RuntimeError) as e:
        pytest.skip(f"cannot listen on 127.0.0.1:465 here: {e}")
    try:
        turn = await run_tool(Email, _params(465, smtp_username=USER, subject="over TLS", content="hi"), http=http,
                              config=_config(ca_file), query="dave@example.com")
    finally:
        controller.stop()
    assert turn.error is None, turn.error
    assert turn.output("tool", "success") is True
    assert mailbox.envelopes[0].rcpt_tos == ["dave@example.com"]
    assert mailbox.message()["Subject"] == "over TLS"


async def test_wrong_password_is_not_retried(starttls: tuple[Mailbox, int], ca_file: Path, http: Any) -> None:
    mailbox, port = starttls
    turn = await run_tool(Email, _params(port, password="wrong", max_retries=2, delay_after_error=0), http=http,
                          config=_config(ca_file), query="alice@example.com")
    assert turn.output("tool", "_ERROR") == AUTH_FAILED
    assert turn.output("tool", "success") is False
    assert mailbox.logins == [USER, USER]  # one attempt: smtplib tries PLAIN, then LOGIN
    assert mailbox.envelopes == []


async def test_smtp_error_is_retried(starttls: tuple[Mailbox, int], ca_file: Path, http: Any) -> None:
    mailbox, port = starttls
    turn = await run_tool(Email, _params(port, max_retries=1, delay_after_error=0), http=http,
                          config=_config(ca_file), query="nobody@refused.example")
    error = turn.output("tool", "_ERROR")
    assert error.startswith("SMTP error occurred: ")
    assert "no such user" in error
    assert len(mailbox.logins) == 2  # the first try and one retry


async def test_untrusted_certificate(starttls: tuple[Mailbox, int], http: Any) -> None:
    mailbox, port = starttls
    turn = await run_tool(Email, _params(port), http=http, config=settings(), query="alice@example.com")
    error = turn.output("tool", "_ERROR")
    assert error.startswith("Unexpected error: ")
    assert "CERTIFICATE_VERIFY_FAILED" in error
    assert turn.output("tool", "success") is False
    assert mailbox.logins == []


async def test_server_without_starttls(ca_file: Path, http: Any) -> None:
    mailbox, port = Mailbox(), _free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        turn = await run_tool(Email, _params(port), http=http, config=_config(ca_file), query="alice@example.com")
    finally:
        controller.stop()
    assert turn.output("tool", "_ERROR") == "SMTP error occurred: STARTTLS extension not supported by server."


async def test_private_smtp_server_refused(http: Any) -> None:
    turn = await run_tool(Email, _params(25, smtp_server="10.1.2.3"), http=http, query="alice@example.com")
    assert turn.output("tool", "_ERROR") == "SMTP server '10.1.2.3' is not allowed: 10.1.2.3 is not a public address"
    assert turn.output("tool", "success") is False


async def test_no_recipient_sends_nothing(http: Any) -> None:
    turn = await run_tool(Email, _params(25, smtp_server="10.1.2.3"), http=http, query="")
    assert turn.error is None
    assert turn.output("tool", "success") is False
    assert not turn.output("tool", "_ERROR")


def test_params_and_schema() -> None:
    from taskcanvas.components import builtin_registry
    from taskcanvas.dsl.errors import DslError

    registry = builtin_registry()
    registry.register(Email)
    dsl = make_canvas({"begin": cpn("Begin", down=["tool"]), "tool": cpn("Email", _params(587))})
    tool = build(dsl, registry).canvas.components["tool"]
    assert isinstance(tool, Email)
    assert tool.function_schema() == RAGFLOW_SCHEMA
    dsl = make_canvas({"begin": cpn("Begin", down=["tool"]), "tool": cpn("Email", _params(587, password=""))})
    with pytest.raises(DslError, match="password must not be empty"):
        build(dsl, registry)
