"""Transactional mails of the subscribe form: the confirmation link, "already subscribed".

Plain text only (``templates/email/confirm.txt``, ``already_subscribed.txt``), with the
headers every message needs (From, To, Subject, Date, Message-ID, MIME-Version) plus
``Auto-Submitted: auto-generated`` (RFC 3834) so that vacation responders stay quiet. No
List-Unsubscribe: these are one-off answers to a form, not list mail.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path

from jinja2 import Environment, StrictUndefined, TemplateError

from digest.config.settings import Settings
from digest.delivery.message import MAIL_POLICY
from digest.errors import RenderError
from digest.render.display import single_line
from digest.render.email import template_loader

CONFIRM_TEMPLATE = "email/confirm.txt"
ALREADY_TEMPLATE = "email/already_subscribed.txt"


def _text_env(templates_dir: Path | None) -> Environment:
    return Environment(
        loader=template_loader(templates_dir),
        autoescape=False,  # noqa: S701 - a text/plain body; values are single sanitized lines
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


def _render(settings: Settings, name: str, **context: object) -> str:
    try:
        template = _text_env(settings.templates_dir).get_template(name)
        return template.render(site_name=single_line(settings.site_name), **context)
    except TemplateError as exc:
        raise RenderError(f"email template {name} failed: {exc}") from exc


def _message(
    to: str, subject: str, text: str, *, settings: Settings, sent_at: datetime
) -> EmailMessage:
    domain = parseaddr(settings.mail_from)[1].rpartition("@")[2].strip().lower() or "localhost"
    message = EmailMessage(policy=MAIL_POLICY)
    try:
        message["From"] = settings.mail_from
        message["To"] = Address(addr_spec=to)
    except (ValueError, IndexError) as exc:  # headerregistry's parse errors
        raise RenderError(f"bad address for a confirmation mail: {exc}") from exc
    message["Subject"] = single_line(subject)
    message["Date"] = format_datetime(sent_at.astimezone(UTC))
    message["Message-ID"] = make_msgid(domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    message["MIME-Version"] = "1.0"
    message.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    return message


def confirmation_message(
    *, to: str, confirm_url: str, settings: Settings, sent_at: datetime
) -> EmailMessage:
    """``Confirm your subscription to <site>`` with the link on a line of its own."""
    hours = max(1, settings.confirm_max_age // 3600)
    text = _render(settings, CONFIRM_TEMPLATE, confirm_url=confirm_url, valid_hours=hours)
    subject = f"Confirm your subscription to {single_line(settings.site_name)}"
    return _message(to, subject, text, settings=settings, sent_at=sent_at)


def already_subscribed_message(
    *, to: str, manage_url: str, settings: Settings, sent_at: datetime
) -> EmailMessage:
    """Sent instead of a confirmation when the address is already subscribed."""
    text = _render(settings, ALREADY_TEMPLATE, manage_url=manage_url)
    subject = f"Your subscription to {single_line(settings.site_name)}"
    return _message(to, subject, text, settings=settings, sent_at=sent_at)
