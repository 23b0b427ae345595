"""The pages' markup, in every phase: well nested, ids unique, every radio and select
labelled, every fieldset with its legend, a ``lang`` on <html>, and nothing the strict CSP
would block (no inline script, style or event handler; scripts and styles only from /c/static)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from html.parser import HTMLParser

from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from api.db.engine import make_session_factory
from api.db.models import Call
from tests.api.conftest import T0, As, FakeClock
from tests.api.customer.conftest import FIRST, book, form_token, issue, post_form

VOID = {"meta", "link", "input", "br", "img", "hr", "source", "col", "wbr"}


class Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.ids: Counter[str] = Counter()
        self.labels: set[str] = set()
        self.labelled: list[str] = []  # ids of inputs and selects that need a label
        self.fieldsets = 0
        self.legends = 0
        self.html_lang: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        element_id = a.get("id")
        if element_id:
            self.ids[element_id] += 1
        if tag == "html":
            self.html_lang = a.get("lang")
        if tag == "label" and a.get("for"):
            self.labels.add(a["for"] or "")
        if (tag == "input" and a.get("type") == "radio") or tag == "select":
            self.labelled.append(a.get("id") or "")
        if tag == "fieldset":
            self.fieldsets += 1
        if tag == "legend":
            self.legends += 1
        if tag == "script" and not (a.get("src") or "").startswith("/c/static/"):
            self.problems.append(f"inline or foreign script {a}")
        if tag == "style":
            self.problems.append("inline <style>")
        sheet = tag == "link" and a.get("rel") == "stylesheet"
        if sheet and not (a.get("href") or "").startswith("/c/static/"):
            self.problems.append(f"foreign style sheet {a}")
        for name, _ in attrs:
            if name == "style" or name.startswith("on"):
                self.problems.append(f"inline {name} on <{tag}>")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()


def check(html: str) -> None:
    c = Checker()
    c.feed(html)
    c.close()
    assert c.problems == []
    assert c.stack == [], c.stack
    assert c.html_lang
    assert [i for i, n in c.ids.items() if n > 1] == []
    assert [i for i in c.labelled if i not in c.labels] == []
    assert c.fieldsets == c.legends


def test_every_phase_renders_sound_markup(
    org_a: As, client: TestClient, clock: FakeClock, db: Engine
) -> None:
    one, two, three = issue(org_a, "ZD-1"), issue(org_a, "ZD-2"), issue(org_a, "ZD-3")
    pages = [client.get(one.path).text, client.get("/c/unknown-token").text]
    stale = client.get(three.path).text
    assert book(client, one).status_code == 303
    assert book(client, two).status_code == 303
    taken = post_form(
        client,
        f"{three.path}/book",
        {"start": FIRST, "tz": "Europe/Berlin", "form_token": form_token(stale)},
    )
    assert taken.status_code == 409
    pages += [taken.text, client.get(one.path).text, client.get(f"{one.path}/reschedule").text]
    clock.now = datetime.fromisoformat("2026-03-02T08:55:00+00:00")
    pages.append(client.get(one.path).text)  # waiting
    with make_session_factory(db)() as session:
        session.execute(update(Call).where(Call.link_id == one.id).values(at_risk_since=T0))
        session.execute(update(Call).where(Call.link_id == two.id).values(admitted_at=clock.now))
        session.commit()
    pages += [client.get(one.path).text, client.get(two.path).text]  # at risk, admitted
    assert org_a.post(f"/v1/call-links/{three.id}/revoke").status_code == 200
    pages.append(client.get(three.path).text)  # gone
    clock.now = datetime.fromisoformat("2026-03-02T10:00:00+00:00")
    pages.append(client.get(two.path).text)  # over
    for html in pages:
        check(html)
    assert 'data-phase="at_risk"' in pages[6] and 'data-phase="admitted"' in pages[7]
    assert 'id="gone"' in pages[8] and 'id="over"' in pages[9]
