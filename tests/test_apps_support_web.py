"""The customer-service page (`instructgen serve --support-kb F`, GET /support) in a real headless
Chromium: the API key, a grounded reply with its citation tag, escalation, resume by URL."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.browser_support import chromium, needs_browser, set_value, wait_until
from tests.conftest import make_model_dir
from tests.serve_support import server

selenium = pytest.importorskip("selenium")
pytestmark = needs_browser

KEY = "sk-support-page"
KB = [
    {
        "id": "returns",
        "question": "How do I return an item?",
        "answer": "Items can be returned within 30 days of delivery.",
    },
    {
        "id": "shipping",
        "question": "Is shipping free?",
        "answer": "Shipping is free on orders over $49.",
    },
]


@pytest.fixture(scope="module")
def url(tmp_path_factory, tokenizer_dir):
    root = tmp_path_factory.mktemp("support-web")
    model = make_model_dir(root / "model", tokenizer_dir, "llama", max_seq_len=1024)
    kb = root / "faq.jsonl"
    kb.write_text("".join(json.dumps(r) + "\n" for r in KB), encoding="utf-8")
    args = ("--support-kb", str(kb), "--support-db", str(root / "s.db"), "--api-key", KEY)
    with server(model, *args, cli=True) as base:
        yield base


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as driver:
        yield driver


def body(driver, name: str) -> str | None:
    return driver.find_element("tag name", "body").get_attribute("data-" + name)


def send(driver, text: str):
    """Type `text`, press Enter and wait for the answer's bubble to finish; returns it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    before = len(driver.find_elements(By.CSS_SELECTOR, ".message.assistant"))
    box = driver.find_element(By.ID, "input")
    box.send_keys(text)
    box.send_keys(Keys.ENTER)
    bubbles = wait_until(
        lambda: [
            b
            for b in [driver.find_elements(By.CSS_SELECTOR, ".message.assistant")]
            if len(b) > before
        ]
    )[0]
    wait_until(lambda: bubbles[-1].get_attribute("data-done") == "true")
    wait_until(lambda: body(driver, "state") == "idle")
    return bubbles[-1]


def test_support_page_answers_escalates_and_resumes(url, browser):
    from selenium.webdriver.common.by import By

    browser.get(url + "/support")
    wait_until(lambda: body(browser, "history") == "new")
    session = body(browser, "session")
    assert session and session.startswith("web-")
    assert browser.find_element(By.ID, "session-id").text == session
    assert browser.current_url.endswith("/support?session=" + session)

    refused = send(browser, "How do I return an item?")  # no key yet: the 401 is shown
    assert "error" in refused.get_attribute("class")
    assert "401" in refused.text and "API key" in refused.text
    assert browser.find_element(By.ID, "input").get_attribute("value") == "How do I return an item?"
    browser.find_element(By.ID, "input").clear()

    browser.find_element(By.ID, "toggle-settings").click()
    set_value(browser, "api-key", KEY, event="change")
    set_value(browser, "user-name", "Ada")
    set_value(browser, "user-tier", "gold")
    answer = send(browser, "How do I return an item?")
    assert "error" not in answer.get_attribute("class"), answer.text
    assert answer.get_attribute("data-reason") == "answered"
    tags = answer.find_elements(By.CSS_SELECTOR, ".citation")
    assert [t.text for t in tags] == ["kb:returns"]
    assert not browser.find_element(By.ID, "escalated").is_displayed()

    human = send(browser, "I want to talk to a human <b>now</b>")
    assert human.get_attribute("data-reason") == "user_request"
    assert human.find_element(By.CSS_SELECTOR, ".badge.escalated").is_displayed()
    assert browser.find_element(By.ID, "escalated").is_displayed()
    assert body(browser, "escalated") == "true"
    mine = browser.find_elements(By.CSS_SELECTOR, ".message.user")[-1]
    assert mine.text == "I want to talk to a human <b>now</b>"  # text, never markup
    assert mine.find_elements(By.TAG_NAME, "b") == []

    stored = httpx.get(
        f"{url}/support/sessions/{session}", headers={"Authorization": f"Bearer {KEY}"}
    ).json()
    assert stored["user"] == {"name": "Ada", "tier": "gold"}
    assert [m["role"] for m in stored["messages"]] == ["user", "assistant"] * 2

    browser.get(f"{url}/support?session={session}")  # a fresh page: the history comes back
    wait_until(lambda: body(browser, "history") == "loaded")
    assert body(browser, "session") == session
    roles = [
        m.get_attribute("class").split()[1]
        for m in browser.find_elements(By.CSS_SELECTOR, ".message")
    ]
    assert roles == ["user", "assistant"] * 2
    texts = browser.execute_script(
        "return [...document.querySelectorAll('.message')].map(m => m.firstChild.data)"
    )
    assert texts == [m["content"] for m in stored["messages"]]
    tags = browser.find_elements(By.CSS_SELECTOR, ".message.assistant .citation")
    assert [t.text for t in tags] == ["kb:returns"]
    assert browser.find_element(By.ID, "escalated").is_displayed()
    assert browser.find_element(By.ID, "user-name").get_attribute("value") == "Ada"

    browser.find_element(By.ID, "new-session").click()
    assert body(browser, "session") != session
    assert browser.find_elements(By.CSS_SELECTOR, ".message") == []
    assert not browser.find_element(By.ID, "escalated").is_displayed()
