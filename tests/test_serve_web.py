"""The web chat page in a real headless Chromium (Debian's chromium + chromedriver, Selenium)."""

from __future__ import annotations

import httpx
import pytest

from tests.browser_support import chromium, needs_browser, set_value, wait_until
from tests.conftest import make_model_dir
from tests.serve_support import server

selenium = pytest.importorskip("selenium")
pytestmark = needs_browser

QUESTION = "请用中文写一首关于春天的诗。"


@pytest.fixture(scope="module")
def url(tmp_path_factory, tokenizer_dir):
    model = make_model_dir(
        tmp_path_factory.mktemp("web") / "model",
        tokenizer_dir,
        "llama",
        d_model=256,
        n_layer=6,
        max_seq_len=2048,
    )
    with server(model) as base:
        yield base


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as driver:
        yield driver


def running(url: str) -> float:
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith("instructgen_requests_running "):
            return float(line.split()[-1])
    raise KeyError("instructgen_requests_running")


def test_chat_page_streams_an_answer(url, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(url + "/")
    wait_until(lambda: "context 2048" in browser.find_element(By.ID, "model").text)
    browser.find_element(By.ID, "toggle-settings").click()
    set_value(browser, "system", "你是一个诗人。")
    set_value(browser, "max-tokens", "300")
    set_value(browser, "temperature", "0")
    browser.execute_script(
        "window.updates = 0; new MutationObserver(() => window.updates++).observe("
        "document.getElementById('messages'), {subtree: true, characterData: true});"
    )
    box = browser.find_element(By.ID, "input")
    box.send_keys(QUESTION)
    box.send_keys(Keys.ENTER)

    user = wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, ".message.user"))
    assert user[0].text == QUESTION  # UTF-8 Chinese round-trips into the page
    answer = browser.find_element(By.CSS_SELECTOR, ".message.assistant")
    wait_until(lambda: answer.get_attribute("data-done") == "true")
    assert "error" not in answer.get_attribute("class")
    shown = browser.execute_script(
        "return document.querySelector('.message.assistant').childNodes[0].data"
    )
    expected = httpx.post(
        url + "/v1/chat/completions",
        json={
            "messages": [
                {"role": "system", "content": "你是一个诗人。"},
                {"role": "user", "content": QUESTION},
            ],
            "max_tokens": 300,
            "temperature": 0,
        },
        timeout=60,
    ).json()["choices"][0]["message"]["content"]
    assert shown == expected and len(shown) > 10  # the streamed text, character for character
    assert browser.execute_script("return window.updates") >= 2  # it arrived in pieces
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "idle"


def test_stop_and_new_chat(url, browser):
    from selenium.webdriver.common.by import By

    browser.find_element(By.ID, "new-chat").click()  # a fresh conversation: a short prompt
    set_value(browser, "max-tokens", "1900")
    before = len(browser.find_elements(By.CSS_SELECTOR, ".message.assistant"))
    box = browser.find_element(By.ID, "input")
    box.send_keys("Tell me a long story")
    browser.find_element(By.ID, "send").click()
    answers = wait_until(
        lambda: [
            a
            for a in [browser.find_elements(By.CSS_SELECTOR, ".message.assistant")]
            if len(a) > before
        ]
    )[0]
    wait_until(lambda: browser.execute_script("return arguments[0].textContent", answers[-1]))
    # greedy decoding of this random model runs the whole 1900 tokens (seconds): stop it
    assert answers[-1].get_attribute("data-done") is None
    browser.find_element(By.ID, "stop").click()
    wait_until(lambda: answers[-1].get_attribute("data-done") == "true")
    assert "(stopped)" in answers[-1].text
    wait_until(lambda: running(url) == 0, timeout=10)  # the server freed the slot
    assert browser.find_element(By.ID, "send").is_enabled()
    browser.find_element(By.ID, "new-chat").click()
    assert browser.find_elements(By.CSS_SELECTOR, ".message") == []
    assert browser.find_element(By.ID, "empty").is_displayed()


def test_page_defaults_fit_a_short_context(llama_dir, browser):
    """With no max tokens set, the page lets the answer use what the context leaves, so a
    128-token model answers instead of refusing every question with a 400."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    with server(llama_dir) as base:
        browser.get(base + "/")
        wait_until(lambda: "context 128" in browser.find_element(By.ID, "model").text)
        assert browser.find_element(By.ID, "max-tokens").get_attribute("value") == ""
        box = browser.find_element(By.ID, "input")
        box.send_keys("hello")
        box.send_keys(Keys.ENTER)
        answer = wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, ".message.assistant"))[0]
        wait_until(lambda: answer.get_attribute("data-done") == "true")
        assert "error" not in answer.get_attribute("class")
